//! English catalogue.

use super::Message;
use crate::core::command::Command;

pub(super) fn text(message: &Message) -> String {
    match message {
        Message::CredentialsTitle => "SALESmanago credentials".into(),
        Message::ClientIdLabel => "Client ID".into(),
        Message::ApiSecretLabel => "API secret".into(),
        Message::OwnerLabel => "Owner e-mail".into(),
        Message::EndpointLabel => "Endpoint".into(),
        Message::SecretSaved => "saved".into(),
        Message::EngineVersion { version } => format!("SALESmanago engine {version}"),
        Message::CommandLabel(command) => command_label(*command).into(),
        Message::CommandNotAvailable { command, version } => format!(
            "“{}” is not available in version {version} of the SALESmanago integration yet.",
            command_label(*command)
        ),
        Message::UnknownCommand { name } => format!(
            "The SALESmanago engine has no command “{name}”. The solution's web resources are from different versions: import the solution again."
        ),
    }
}

fn command_label(command: Command) -> &'static str {
    match command {
        Command::FetchContact => "Fetch from SALESmanago",
        Command::SendContact => "Send to SALESmanago",
        Command::ExportSelected => "Export to SALESmanago",
        Command::TestConnection => "Test connection",
        Command::ExportAll => "Export all contacts",
        Command::PullConsents => "Pull consents",
        Command::SaveCredentials => "Save credentials",
        Command::PullChanges => "Pull changes",
    }
}
