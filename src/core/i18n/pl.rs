//! Polish catalogue.

use super::Message;
use crate::core::command::Command;

pub(super) fn text(message: &Message) -> String {
    match message {
        Message::CredentialsTitle => "Dane dostępowe SALESmanago".into(),
        Message::ClientIdLabel => "Identyfikator klienta".into(),
        Message::ApiSecretLabel => "Sekret API".into(),
        Message::OwnerLabel => "E-mail właściciela".into(),
        Message::EndpointLabel => "Adres API".into(),
        Message::SecretSaved => "zapisano".into(),
        Message::EngineVersion { version } => format!("SALESmanago engine {version}"),
        Message::CommandLabel(command) => command_label(*command).into(),
        Message::CommandNotAvailable { command, version } => format!(
            "„{}” nie jest jeszcze dostępne w wersji {version} integracji z SALESmanago.",
            command_label(*command)
        ),
        Message::UnknownCommand { name } => format!(
            "Silnik SALESmanago nie zna polecenia „{name}”. Zasoby sieci Web rozwiązania pochodzą z różnych wersji: zaimportuj rozwiązanie ponownie."
        ),
    }
}

fn command_label(command: Command) -> &'static str {
    match command {
        Command::FetchContact => "Pobierz z SALESmanago",
        Command::SendContact => "Wyślij do SALESmanago",
        Command::ExportSelected => "Eksportuj do SALESmanago",
        Command::TestConnection => "Testuj połączenie",
        Command::ExportAll => "Eksportuj wszystkie kontakty",
        Command::PullConsents => "Pobierz zgody",
        Command::SaveCredentials => "Zapisz dane dostępowe",
        Command::PullChanges => "Pobierz zmiany",
    }
}
