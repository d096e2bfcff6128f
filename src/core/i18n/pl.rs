//! Polish catalogue.

use super::{Counts, MappingLabel, Message, Service};
use crate::core::command::{BulkJob, Command};
use crate::core::credentials::{Field, FieldProblem};
use crate::core::dataverse::schema::contact;
use crate::core::integration::SettingsError;
use crate::core::job::lease::STALE_MS;
use crate::core::mapping::draft::ScopeProblem;
use crate::core::mapping::fields::{self, EntryProblem, MappingError, Problem};
use crate::core::mapping::normalize::EmailProblem;
use crate::core::mapping::outbound::MAX_TEXT;
use crate::core::mapping::{Skip, Warning};
use crate::core::salesmanago::relay::Refusal;
use crate::core::salesmanago::{EndpointError, RetryAfter, SmError, TransportFailure};
use crate::core::scope::view::ViewError;
use crate::core::scope::ScopeError;
use crate::prelude::*;

pub(super) fn text(message: &Message) -> String {
    match message {
        #[cfg(feature = "admin")]
        Message::CredentialsTitle => "Dane dostępowe SALESmanago".into(),
        #[cfg(feature = "admin")]
        Message::ClientIdLabel => "Identyfikator klienta".into(),
        #[cfg(feature = "admin")]
        Message::ApiSecretLabel => "Sekret API".into(),
        #[cfg(feature = "admin")]
        Message::OwnerLabel => "E-mail właściciela".into(),
        #[cfg(feature = "admin")]
        Message::EndpointLabel => "Adres API".into(),
        #[cfg(feature = "admin")]
        Message::RelayKeyLabel => "Klucz pośrednika (tylko z salesmanago-relay)".into(),
        #[cfg(feature = "admin")]
        Message::RelayKeySaved => "zapisano (wpisz nowy klucz, aby go zastąpić)".into(),
        #[cfg(feature = "admin")]
        Message::CredentialsNeedForm => "Otwórz tę stronę z rekordu Integracja z SALESmanago w Dynamics 365, aby wpisać dane dostępowe.".into(),
        #[cfg(feature = "admin")]
        Message::SecretSaved => "zapisano (wpisz nowy sekret, aby go zastąpić)".into(),
        #[cfg(feature = "admin")]
        Message::EngineVersion { version } => format!("SALESmanago engine {version}"),
        #[cfg(feature = "admin")]
        Message::CommandLabel(command) => command_label(*command).into(),
        Message::UnknownCommand { name } => format!(
            "Silnik SALESmanago nie zna polecenia „{name}”. Zasoby sieci Web rozwiązania pochodzą z różnych wersji: zaimportuj rozwiązanie ponownie."
        ),
        Message::Salesmanago(error) => salesmanago(error),
        Message::Endpoint(error) => endpoint(*error).into(),
        Message::CredentialsIncomplete => "W rekordzie Integracja z SALESmanago brakuje identyfikatora klienta, sekretu API albo e-maila właściciela. Wpisz je na stronie danych dostępowych.".into(),
        Message::InvalidInput { detail } => format!("Silnik SALESmanago otrzymał dane, których nie potrafi odczytać ({detail}). Zaimportuj rozwiązanie ponownie; jeśli to nie pomoże, zgłoś ten tekst."),
        Message::Skipped(Skip::MissingEmail) => {
            "Nie wysłano: kontakt nie ma adresu e-mail, a SALESmanago rozpoznaje kontakty po adresie e-mail. Dodaj adres i wyślij ponownie.".into()
        }
        Message::Skipped(Skip::InvalidEmail { email, problem }) => {
            format!("Nie wysłano: „{email}” nie jest adresem e-mail akceptowanym przez SALESmanago ({}). Popraw go i wyślij ponownie.", email_problem(*problem))
        }
        Message::Warning(Warning::Truncated { column }) => {
            format!("{} miało więcej niż {MAX_TEXT} znaków; SALESmanago otrzymało pierwsze {MAX_TEXT}.", column_label(column))
        }
        Message::Warning(Warning::PhoneIgnored { column }) => {
            format!("{} nie jest numerem telefonu, więc nie zostało wysłane.", column_label(column))
        }
        Message::Warning(Warning::Mapped(Problem::Truncated { column })) => {
            format!("Kolumna „{column}” miała ponad {MAX_TEXT} znaków; SALESmanago otrzymało pierwsze {MAX_TEXT}.")
        }
        Message::Warning(Warning::Mapped(Problem::NotItsType { column })) => {
            format!("Kolumna „{column}” nie ma typu podanego w mapowaniu pól, więc jej nie wysłano. Zapisz mapowanie ponownie w jego edytorze.")
        }
        Message::Warning(Warning::Mapped(Problem::NoLabel { column, value })) => {
            format!("Kolumna „{column}” ma opcję {value}, dla której mapowanie pól nie ma etykiety, więc jej nie wysłano. Zapisz mapowanie ponownie w jego edytorze.")
        }
        Message::Warning(Warning::BirthdateIgnored) => {
            "Data urodzenia nie jest prawdziwą datą z przedziału od 1900 roku do dziś, więc nie została wysłana.".into()
        }
        #[cfg(feature = "export")]
        Message::DeletedEmailUnknown => "Ten kontakt usunięto w Dynamics 365, gdy jego zmiana nie dotarła do SALESmanago, a jego adres e-mail nie jest już znany, więc nie został usunięty z SALESmanago. Usuń go tam ręcznie; aby następnym razem zrobiło to nadrabianie, włącz \"Zachowuj usunięte rekordy Dataverse\" w ustawieniach środowiska.".into(),
        #[cfg(feature = "export")]
        Message::DeltaExpired => "Dynamics 365 nie przechowuje już zmian od ostatniego nadrabiania (śledzenie zmian przechowuje je przez określoną liczbę dni), więc wszystkie kontakty odczytano ponownie. Kontaktów usuniętych w międzyczasie nie dało się zobaczyć: sprawdź w SALESmanago kontakty usunięte w Dynamics 365.".into(),
        #[cfg(feature = "export")]
        Message::NotTracked => "Tabela Kontakt nie śledzi zmian, więc kontakty odczytano według czasu modyfikacji, a usunięć nie da się nadrobić. Włącz \"Śledzenie zmian\" dla tabeli Kontakt.".into(),
        Message::Unreadable => "Dynamics 365 zwróciło ten kontakt w postaci, której integracja nie potrafi odczytać (brak identyfikatora kontaktu), więc został pominięty. Otwórz kontakt i zapisz go, a potem uruchom zadanie ponownie.".into(),
        Message::NotAccepted { email, reason: Some(reason) } => format!("SALESmanago nie przyjęło kontaktu {email}: {reason}"),
        Message::NotAccepted { email, reason: None } => format!("SALESmanago nie przyjęło kontaktu {email} i nie podało powodu."),
        Message::EmailTaken { email } => format!("Nowy adres e-mail {email} ma już inny kontakt w SALESmanago, więc adres tego kontaktu nie został zmieniony. Scal oba kontakty w SALESmanago albo zmień adres."),
        #[cfg(feature = "admin")]
        Message::FieldInvalid { field, problem } => field_problem(*field, *problem),
        #[cfg(feature = "admin")]
        Message::FieldsInvalid => "Nic nie zapisano: popraw zaznaczone pola.".into(),
        #[cfg(feature = "admin")]
        Message::CredentialsSaved => "Zapisano dane dostępowe. Sprawdź je przyciskiem „Testuj połączenie”.".into(),
        #[cfg(feature = "admin")]
        Message::IntegrationExists => "Rekord integracji z SALESmanago już istnieje, a może być tylko jeden. Otwórz go w obszarze Integracja z SALESmanago zamiast tworzyć kolejny.".into(),
        Message::Settings(error) => settings(error),
        #[cfg(feature = "admin")]
        Message::ConnectionOk { owner } if owner.is_empty() => "Połączono z SALESmanago przez pośrednika. Właściciel ustawiony w pośredniku (SALESMANAGO_OWNER) jest użytkownikiem tego konta i kontakty będą zapisywane jako jego.".into(),
        #[cfg(feature = "admin")]
        Message::OwnerNotAUser { owner } if owner.is_empty() => "Pośrednik łączy się z SALESmanago, ale jego właściciel (SALESMANAGO_OWNER) nie jest użytkownikiem tego konta SALESmanago. Poproś administratora pośrednika o wpisanie e-maila użytkownika SALESmanago.".into(),
        #[cfg(feature = "admin")]
        Message::ConnectionOk { owner } => format!("Połączono z SALESmanago. {owner} jest użytkownikiem tego konta i kontakty będą zapisywane jako jego."),
        #[cfg(feature = "admin")]
        Message::OwnerNotAUser { owner } => format!("Identyfikator klienta i sekret API działają, ale {owner} nie jest użytkownikiem tego konta SALESmanago. Podaj jako właściciela e-mail użytkownika SALESmanago."),
        Message::Dataverse { detail } => format!("Dynamics 365 odrzucił żądanie: {detail}"),
        #[cfg(feature = "jobs")]
        Message::Progress { command, done, total } => match total {
            Some(total) => format!("{}: {done} z {total} kontaktów…", command_label(*command)),
            None => format!("{}: {done} kontaktów…", command_label(*command)),
        },
        #[cfg(feature = "jobs")]
        Message::Waiting { command, done, total, service, seconds } => {
            let progress = text(&Message::Progress { command: *command, done: *done, total: *total });
            match service {
                Service::Dataverse => format!("{progress} Dynamics 365 poprosił o spowolnienie (limity ochrony usług): wznowienie za {seconds} s."),
                Service::Salesmanago => format!("{progress} SALESmanago poprosiło o spowolnienie: wznowienie za {seconds} s."),
            }
        }
        #[cfg(feature = "jobs")]
        Message::Summary { job, counts } => summary(*job, counts),
        #[cfg(feature = "jobs")]
        Message::JobRunning { command, user, minutes, done, total, seconds_left } => {
            let who = someone(user);
            let progress = share(*done, *total);
            format!(
                "„{}” już trwa: uruchomienie rozpoczął(-ęła) {who} {minutes} min temu, dotąd gotowe kontakty: {progress}. Poczekaj, aż się zakończy. Jeśli jego okno zamknięto, możesz uruchomić je ponownie za {seconds_left} s (3 minuty po ostatniej aktywności) i będzie kontynuowane od miejsca, w którym się zatrzymało.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::JobJustRan { command, user, done, total } => {
            let who = someone(user);
            let progress = share(*done, *total);
            format!(
                "„{}” właśnie się wykonało: uruchomił(a) je {who}, gdy to uruchomienie było w drodze, i już się zakończyło (obsłużone kontakty: {progress}). To uruchomienie pominięto, aby zadanie nie wykonało się dwa razy; uruchom je ponownie, jeśli potrzebny jest kolejny przebieg.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::JobTakenOver { command, user } => {
            let who = someone(user);
            format!(
                "„{}” zatrzymano w tym oknie: {who} uruchomił(a) je ponownie, gdy to okno przez 3 minuty nie dawało znaku życia. Nic nie przepadło: nowe uruchomienie kontynuuje od miejsca, w którym to się zatrzymało.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::RecordBusy { command } => format!(
            "„{}” nie może zapisać postępu: rekord integracji SALESmanago cały czas się zmieniał. Spróbuj ponownie za chwilę.",
            command_label(*command)
        ),
        #[cfg(feature = "jobs")]
        Message::SummaryNotRecorded { detail } => format!(
            "Rekord integracji SALESmanago nie przyjął tego podsumowania ({detail}). Powyższa praca została wykonana, ale rekord jej nie pokazuje: zadanie można uruchomić ponownie za {} min, a ten przebieg może ponownie objąć część tych samych kontaktów.",
            STALE_MS / 60_000
        ),
        #[cfg(feature = "jobs")]
        Message::DownloadNotDone { count } => format!("Pobrać listę {count} kontaktów, których nie przetworzono, z powodami (CSV)?"),
        #[cfg(feature = "jobs")]
        Message::Unlisted { count } => format!("…i {count} kolejnych, niewymienionych tutaj. Status synchronizacji i ostatni błąd każdego kontaktu zapisują powód."),
        #[cfg(feature = "consents")]
        Message::PreparingFile { seconds } => format!("Pobieranie zgód: SALESmanago przygotowuje plik ze zgodami i wypisami (czekam już {seconds} s). Przy dużych kontach trwa to kilka minut; nie zamykaj tego okna."),
        #[cfg(feature = "consents")]
        Message::ReadingFile { contacts } => format!("Pobieranie zgód: czytam plik z SALESmanago, dotąd {contacts} kontaktów…"),
        #[cfg(feature = "activity")]
        Message::ActivityKindUnknown { name } => format!("Pole \u{201e}Pobierz aktywność: zachowywane rodzaje\u{201d} w rekordzie integracji z SALESmanago zawiera \u{201e}{name}\u{201d}, co nie jest rodzajem aktywności, więc niczego nie pobrano. Użyj tych nazw, rozdzielonych przecinkami: sent, opened, clicked, bounced, unsubscribed, visit, event; albo zostaw pole puste, aby zachować wszystkie poza sent."),
        #[cfg(feature = "consents")]
        Message::FileNotReady { minutes } => format!("SALESmanago nie przygotowało pliku ze zgodami i wypisami w ciągu {minutes} minut, więc nic nie zmieniono. Spróbuj pobrać zgody ponownie później."),
        #[cfg(feature = "changes")]
        Message::LookupFailed { contact, reason } => format!("Kontakt SALESmanago {contact} zmienił się, ale nie udało się go tam odczytać, więc jego zmiany jeszcze nie zastosowano: zostanie odczytany ponownie następnym razem. {reason}"),
        #[cfg(feature = "consents")]
        Message::FileUnreadable { detail } => format!("Nie udało się odczytać pliku ze zgodami i wypisami z SALESmanago ({detail}), więc nic nie zmieniono. Spróbuj ponownie; jeśli to się powtórzy, przekaż ten komunikat administratorowi."),
        #[cfg(feature = "contact")]
        Message::MayNotDelete => "nie masz uprawnień do usunięcia tego kontaktu w Dynamics 365, więc w SALESmanago też pozostał bez zmian. Poproś administratora o prawo usuwania kontaktów.".into(),
        Message::MissingPrivilege { privilege } => format!("Twoje role zabezpieczeń nie pozwalają {}. Poproś administratora o przypisanie roli „SALESmanago user” (przyciski SALESmanago na kontaktach) albo „SALESmanago administrator” (rekord Integracja z SALESmanago i jego zadania).", privilege_words(privilege)),
        #[cfg(feature = "export")]
        Message::Resuming { done } => format!("Wznawiam przerwany eksport: {done} kontaktów już wyeksportowano."),
        #[cfg(feature = "contact")]
        Message::NotInSalesmanago { email } if email.is_empty() => "W SALESmanago nie ma takiego kontaktu: ten kontakt nie ma adresu e-mail ani identyfikatora SALESmanago, po którym można go znaleźć.".into(),
        #[cfg(feature = "contact")]
        Message::NotInSalesmanago { email } => format!("W SALESmanago nie ma kontaktu z adresem {email}. Użyj „Wyślij do SALESmanago”, aby go tam utworzyć."),
        #[cfg(feature = "contact")]
        Message::Fetched { fields } => format!("Uzupełniono {fields} pól danymi z SALESmanago. Sprawdź je i zapisz kontakt, aby je zachować."),
        #[cfg(feature = "contact")]
        Message::SaveFirst => "Najpierw zapisz kontakt, a potem spróbuj ponownie.".into(),
        #[cfg(feature = "contact")]
        Message::OutsideScope => "Nie wysłano: ten kontakt jest poza zakresem synchronizacji ustawionym w rekordzie integracji z SALESmanago (nie jest oznaczony do synchronizacji). Oznacz go albo poproś administratora o zmianę zakresu.".into(),
        #[cfg(feature = "admin")]
        Message::MappingProblem(error) => mapping(error),
        #[cfg(feature = "admin")]
        Message::MappingSaved { entries: 0 } => "Zapisano: poza wbudowanymi nie zmapowano żadnych kolumn.".into(),
        #[cfg(feature = "admin")]
        Message::MappingSaved { entries } => format!("Zapisano: zmapowane kolumny: {entries}. Mapowanie obowiązuje każdy kontakt od jego następnej zmiany; aby wysłać z nim wszystkie kontakty teraz, uruchom Eksport wszystkich (jego podsumowanie poda, ile kontaktów wysłano ponownie z powodu tej zmiany)."),
        #[cfg(feature = "admin")]
        Message::PreviewNoContact { who } => format!("Żaden kontakt nie ma adresu e-mail „{who}” ani nazwy zaczynającej się od tego."),
        #[cfg(feature = "admin")]
        Message::MappingLabel(label) => match label {
            MappingLabel::Title => "Co się synchronizuje",
            MappingLabel::Intro => "Które kontakty się synchronizują oraz kolumny Dynamics wysyłane do SALESmanago oprócz wbudowanych (imię i nazwisko, e-mail, telefony, adres, data urodzenia, rezygnacje, zgody) wraz z kierunkiem.",
            MappingLabel::Column => "Kolumna Dynamics",
            MappingLabel::Target => "W SALESmanago",
            MappingLabel::Name => "Szczegół, tag lub pole",
            MappingLabel::Direction => "Kierunek",
            MappingLabel::Detail => "Szczegół kontaktu",
            MappingLabel::Tag => "Tag",
            MappingLabel::Field => "Pole standardowe",
            MappingLabel::To => "Do SALESmanago",
            MappingLabel::From => "Z SALESmanago",
            MappingLabel::Both => "W obie strony",
            MappingLabel::Add => "Dodaj kolumnę",
            MappingLabel::Remove => "Usuń",
            MappingLabel::Save => "Zapisz mapowanie i zakres",
            MappingLabel::PreviewWho => "Podgląd kontaktu (e-mail lub nazwa)",
            MappingLabel::Preview => "Podgląd",
            MappingLabel::Empty => "Poza wbudowanymi nie zmapowano żadnych kolumn.",
            MappingLabel::Valid => "Mapowanie można zapisać.",
            MappingLabel::NeedForm => "Otwórz tę stronę z rekordu integracji z SALESmanago w Dynamics 365, aby edytować mapowanie.",
            MappingLabel::Scope => "Kontakty, które się synchronizują",
            MappingLabel::ScopeAll => "Wszystkie kontakty",
            MappingLabel::ScopeMarked => "Kontakty oznaczone kolumną Tak/Nie",
            MappingLabel::ScopeView => "Kontakty z widoku",
            MappingLabel::ScopeColumn => "Oznaczająca kolumna",
            MappingLabel::ScopeViewName => "Widok",
            MappingLabel::Leaving => "Kontakt opuszczający zakres",
            MappingLabel::LeaveAlone => "Zostaw go w SALESmanago",
            MappingLabel::OptOut => "Wypisz go w SALESmanago",
            MappingLabel::ViewSaved => "Warunki widoku zapisują się z zakresem: po zmianie widoku zapisz tu ponownie.",
        }
        .into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::NoColumn) => "Wybierz kolumnę Tak/Nie, która oznacza kontakty do synchronizacji.".into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::NoView) => "Wybierz widok, którego kontakty się synchronizują.".into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::View(error)) => format!("Ten widok {}", view_problem(error)),
        Message::AlreadyMatches => "Ten kontakt zawiera już to samo, co SALESmanago.".into(),
        #[cfg(feature = "contact")]
        Message::Differs { fields } => format!("SALESmanago ma inne dane tego kontaktu (pól: {fields}). Użyj „Pobierz z SALESmanago”, aby je przejrzeć."),
        #[cfg(feature = "contact")]
        Message::Standing { .. } => super::standing::text(message, &super::standing::POLISH),
        #[cfg(feature = "contact")]
        Message::Sent => "Wysłano do SALESmanago.".into(),
        #[cfg(feature = "contact")]
        Message::SyncFailed { reason } => format!("Zapisano w Dynamics, ale nie wysłano do SALESmanago: {reason} Użyj „Wyślij do SALESmanago”, aby spróbować ponownie."),
        #[cfg(feature = "contact")]
        Message::DeleteConfirm { count, opt_out_only: false } => format!("Usunąć kontakty ({count}) w Dynamics i w SALESmanago? Tej operacji nie można cofnąć."),
        #[cfg(feature = "contact")]
        Message::DeleteConfirm { count, opt_out_only: true } => format!("Usunąć kontakty ({count}) w Dynamics i wypisać je z newslettera i SMS w SALESmanago? Tej operacji nie można cofnąć."),
        Message::Deleted { deleted, failures, kept, opt_out_only } => {
            let there = if *opt_out_only { "wypisano w SALESmanago" } else { "usunięto w SALESmanago" };
            let mut text = format!("Usunięto kontakty w Dynamics ({deleted}) i {there}.");
            if *kept > 0 {
                text.push_str(&format!(" Z nich w SALESmanago pozostało: {kept}, bo inny kontakt w Dynamics ma ten sam e-mail."));
            }
            if !failures.is_empty() {
                text.push_str(&format!(" Nie usunięto nigdzie: {}; spróbuj ponownie: {}", failures.len(), failures.join("; ")));
            }
            text
        }
    }
}

/// Who started a run, as its lease names them.
fn someone(user: &str) -> &str {
    if user.is_empty() {
        "inny użytkownik"
    } else {
        user
    }
}

/// Contacts done of a run, of how many when known.
fn share(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{done} z {total}"),
        None => format!("{done}"),
    }
}

fn command_label(command: Command) -> &'static str {
    match command {
        Command::FetchContact => "Pobierz z SALESmanago",
        Command::SendContact => "Wyślij do SALESmanago",
        Command::ExportSelected => "Eksportuj do SALESmanago",
        Command::TestConnection => "Testuj połączenie",
        Command::ExportAll => "Eksportuj wszystkie kontakty",
        Command::ExportChanges => "Eksportuj zmiany",
        Command::PullConsents => "Pobierz zgody",
        Command::SaveCredentials => "Zapisz dane dostępowe",
        Command::PullChanges => "Pobierz zmiany",
        Command::PullActivity => "Pobierz aktywność",
        Command::ContactOpened => "Sprawdź SALESmanago",
        Command::ContactSaved => "Synchronizacja przy zapisie",
        Command::DeleteContacts => "Usuń",
        Command::IntegrationOpened => "Sprawdź rekord integracji",
    }
}

fn salesmanago(error: &SmError) -> String {
    match error {
        SmError::Auth => "SALESmanago odrzuciło dane dostępowe. Sprawdź identyfikator klienta, sekret API i adres API w rekordzie Integracja z SALESmanago (w SALESmanago: Centrum integracji → API).".into(),
        SmError::UnknownOwner { owner } => format!("„{owner}” nie jest użytkownikiem tego konta SALESmanago. Jako właściciela wpisz e-mail użytkownika SALESmanago."),
        SmError::Rejected { messages } if messages.is_empty() => "SALESmanago odrzuciło żądanie bez podania powodu.".into(),
        SmError::Rejected { messages } => format!("SALESmanago odrzuciło żądanie: {}", messages.join("; ")),
        SmError::Throttled { retry_after: Some(RetryAfter::Seconds(seconds)) } => {
            format!("SALESmanago otrzymuje zbyt wiele żądań. Spróbuj ponownie za {} s.", (*seconds).max(1))
        }
        // A date is made a delay where the clock is (`SmError::settled`); one left is not shown as a number.
        SmError::Throttled { retry_after: None | Some(RetryAfter::At(_)) } => "SALESmanago otrzymuje zbyt wiele żądań. Spróbuj ponownie za minutę.".into(),
        SmError::Server { status } => format!("SALESmanago jest teraz niedostępne (HTTP {status}). Spróbuj ponownie za kilka minut."),
        SmError::UnknownMethod => "Pod tym adresem API nie ma tej funkcji SALESmanago (HTTP 404). Sprawdź adres API: powinien to być Twój serwer SALESmanago, np. app3.salesmanago.pl, albo pośrednik, który przekazuje wszystkie wywołania /api.".into(),
        SmError::UnexpectedStatus { status } => format!("SALESmanago odpowiedziało kodem HTTP {status}. Sprawdź adres API w rekordzie Integracja z SALESmanago."),
        SmError::Transport(TransportFailure::Timeout) => "SALESmanago nie odpowiedziało na czas. Sprawdź połączenie i spróbuj ponownie.".into(),
        SmError::Transport(TransportFailure::Network) => "Nie można połączyć się z SALESmanago. Sprawdź połączenie z internetem i adres API w rekordzie Integracja z SALESmanago.".into(),
        SmError::Transport(TransportFailure::CrossOrigin) => "Przeglądarka zablokowała wywołanie SALESmanago: adres API nie zezwala na wywołania z tego adresu Dynamics (CORS). API SALESmanago jest przeznaczone do wywołań z serwerów: uruchom salesmanago-relay (zob. README rozwiązania) i wpisz jego adres https:// oraz klucz pośrednika w rekordzie Integracja z SALESmanago.".into(),
        SmError::InvalidResponse { detail } => format!("SALESmanago przysłało odpowiedź, której integracja nie potrafi odczytać ({detail}). Spróbuj ponownie; jeśli to się powtórzy, sprawdź adres API."),
        SmError::Relay(refusal) => relay(*refusal),
        SmError::RelayCredentials => "SALESmanago odrzuciło dane dostępowe pośrednika. Poproś jego administratora o sprawdzenie SALESMANAGO_CLIENT_ID, SALESMANAGO_API_SECRET i SALESMANAGO_ENDPOINT.".into(),
    }
}

fn endpoint(error: EndpointError) -> &'static str {
    match error {
        EndpointError::Missing => "Wpisz adres API SALESmanago, np. app3.salesmanago.pl.",
        EndpointError::NotSalesmanagoHost => "Adres API nie jest serwerem SALESmanago. Wpisz swój serwer SALESmanago, np. app3.salesmanago.pl, albo pełny adres https:// pośrednika.",
        EndpointError::InsecureScheme => "Adres API musi zaczynać się od https://.",
        EndpointError::CredentialsInUrl => "Adres API nie może zawierać nazwy użytkownika ani hasła.",
        EndpointError::QueryOrFragment => "Adres API nie może zawierać znaków „?” ani „#”. Wpisz tylko serwer albo adres pośrednika.",
        EndpointError::InvalidHost => "Nazwa serwera w adresie API jest nieprawidłowa. Wpisz serwer, np. app3.salesmanago.pl, albo adres https://.",
    }
}

fn email_problem(problem: EmailProblem) -> &'static str {
    match problem {
        EmailProblem::TooLong => "ma więcej niż 254 znaki",
        EmailProblem::LocalPartTooLong => "część przed @ ma więcej niż 64 znaki",
        EmailProblem::NotAscii => "zawiera litery takie jak ą czy ü, których SALESmanago nie przyjmuje w adresach",
        EmailProblem::Malformed => "nie ma postaci nazwa@domena.pl",
    }
}

fn column_label(column: &str) -> &'static str {
    match column {
        contact::FULL_NAME => "Imię i nazwisko",
        contact::STREET_1 => "Ulica",
        contact::POSTAL_CODE => "Kod pocztowy",
        contact::CITY => "Miasto",
        contact::COUNTRY => "Kraj",
        contact::MOBILE_PHONE => "Telefon komórkowy",
        contact::BUSINESS_PHONE => "Telefon służbowy",
        contact::FAX => "Faks",
        _ => "Wartość",
    }
}

fn field_problem(field: Field, problem: FieldProblem) -> String {
    let name = match field {
        Field::ClientId => "identyfikator klienta",
        Field::ApiSecret => "sekret API",
        Field::Owner => "e-mail właściciela",
        Field::Endpoint => "adres API",
        Field::RelayKey => "klucz pośrednika",
    };
    match problem {
        FieldProblem::Required => format!("Podaj {name}."),
        FieldProblem::TooLong { max } => format!("Skróć {name} do najwyżej {max} znaków."),
        FieldProblem::Whitespace => format!(
            "Usuń spacje z pola {name}; skopiuj wartość ponownie z SALESmanago (Ustawienia → Integracja → API)."
        ),
        FieldProblem::Email(problem) => format!("Właściciel musi być adresem e-mail ({}).", email_problem(problem)),
        FieldProblem::Endpoint(error) => endpoint(error).into(),
        FieldProblem::SecretWithRelay => "Zostaw sekret API pusty, gdy używasz klucza pośrednika: sekret przechowuje pośrednik. Aby łączyć się z SALESmanago bezpośrednio, usuń klucz pośrednika.".into(),
        FieldProblem::RelayKeyShape => "Wpisz klucz pośrednika tak, jak wypisało go salesmanago-relay new-key: jego identyfikator, kropkę i sekret.".into(),
    }
}

fn settings(error: &SettingsError) -> String {
    match error {
        SettingsError::NoRecord => "Nie ma jeszcze rekordu integracji z SALESmanago. Administrator tworzy go i wpisuje dane dostępowe.".into(),
        SettingsError::SeveralRecords => "Istnieje więcej niż jeden rekord integracji z SALESmanago, więc nie wiadomo, którego użyć. Usuń wszystkie poza jednym.".into(),
        SettingsError::Incomplete => text(&Message::CredentialsIncomplete),
        SettingsError::Endpoint(error) => format!("Adres API w rekordzie integracji z SALESmanago jest nieprawidłowy. {}", endpoint(*error)),
        SettingsError::Scope(ScopeError::Column(column)) if column.is_empty() => "Niczego nie zsynchronizowano: zakres synchronizacji w rekordzie integracji z SALESmanago to „Oznaczone kontakty”, ale nie wskazuje kolumny. Wpisz nazwę logiczną kolumny Tak/Nie kontaktu albo wybierz „Wszystkie kontakty”.".into(),
        SettingsError::Scope(ScopeError::Column(column)) => format!("Niczego nie zsynchronizowano: zakres synchronizacji w rekordzie integracji z SALESmanago wskazuje „{column}”, co nie jest nazwą logiczną kolumny Tak/Nie kontaktu, której integracja może użyć (małe litery, cyfry i _; nie kolumna synchronizowana przez samą integrację). Popraw to w tym rekordzie."),
        SettingsError::Scope(ScopeError::View(error)) => format!("Niczego nie zsynchronizowano: widok zakresu synchronizacji {} Wybierz widok ponownie w edytorze mapowania albo inny zakres.", view_problem(error)),
        SettingsError::Scope(ScopeError::Option(value)) => format!("Niczego nie zsynchronizowano: zakres synchronizacji w rekordzie integracji z SALESmanago ma opcję {value}, której ta wersja integracji nie zna. Zaimportuj rozwiązanie ponownie albo wybierz inną opcję."),
        SettingsError::Mapping(error) => format!(
            "Niczego nie zsynchronizowano: mapowania pól w rekordzie integracji z SALESmanago nie da się użyć. {} Popraw je w edytorze mapowania w tym rekordzie.",
            mapping(error)
        ),
    }
}

/// Co jest nie tak z widokiem jako zakresem (to samo mówi edytor).
pub(super) fn view_problem(error: &ViewError) -> String {
    match error {
        ViewError::Malformed(detail) => format!("jest nieczytelny ({detail})."),
        ViewError::NotContacts(table) => format!("zawiera wiersze {table}, a nie kontakty."),
        ViewError::Unsupported(what) => format!("używa {what}, czego integracja nie rozstrzyga dla każdego kontaktu: warunki widoku muszą dotyczyć własnych kolumn kontaktu (równe, różne, puste, na liście, like, zaczyna się lub kończy na, większe lub mniejsze)."),
    }
}

/// Co jest nie tak z zapisanym mapowaniem pól (to samo zdanie pokazuje edytor).
pub(super) fn mapping(error: &MappingError) -> String {
    match error {
        MappingError::NotJson { detail } => format!("To nie jest poprawny JSON ({detail})."),
        MappingError::Shape { detail } => format!("To nie jest mapowanie pól: {detail}."),
        MappingError::Version { found } => {
            format!("Zapisała je inna wersja integracji (wersja {found}); ta czyta wersję {}.", fields::VERSION)
        }
        MappingError::TooMany { count } => {
            format!("Ma {count} pozycji; można zmapować najwyżej {}.", fields::MAX_ENTRIES)
        }
        MappingError::Entry { number, column, problem } => {
            let which =
                if column.is_empty() { format!("Pozycja {number}") } else { format!("Pozycja {number} ({column})") };
            let what = match problem {
                EntryProblem::UnknownKey(key) => format!("ma „{key}”, czego pozycja nie ma"),
                EntryProblem::Column => "wymaga nazwy logicznej kolumny kontaktu (małe litery, cyfry i _)".into(),
                EntryProblem::Reserved => "mapuje kolumnę, którą integracja synchronizuje sama (imię i nazwisko, e-mail, telefony, adres, data urodzenia, rezygnacje, zgody, status)".into(),
                EntryProblem::Type(name) => format!("ma typ „{name}”; użyj text, number, date, yesno, choice albo lookup"),
                EntryProblem::Target => "wymaga dokładnie jednego z: field, detail, tag".into(),
                EntryProblem::Field(name) => format!("wskazuje pole „{name}”; wolne pola standardowe SALESmanago to company i province"),
                EntryProblem::Name(name) => format!("ma nazwę szczegółu lub tagu „{name}”, która jest pusta, dłuższa niż {} znaków albo jest tagiem samej integracji", fields::MAX_NAME),
                EntryProblem::Direction(name) => format!("ma kierunek „{name}”; użyj to, from albo both"),
                EntryProblem::TypeForTarget => "nie może tam trafić: tagi tworzą tylko kolumny Tak/Nie i opcji, a pole standardowe przyjmuje tekst, opcję albo odnośnik".into(),
                EntryProblem::NotFromSalesmanago => "nie może przychodzić z SALESmanago (odnośnik albo pole, którego SALESmanago nie zwraca): ustaw kierunek „to”".into(),
                EntryProblem::Labels => "to kolumna opcji bez etykiet: zapisz ją ponownie w edytorze mapowania".into(),
                EntryProblem::NoSuchColumn => "wskazuje kolumnę, której kontakt nie ma albo której nie można mapować".into(),
                EntryProblem::Twice { first } => format!("wskazuje to samo pole, szczegół lub tag SALESmanago co pozycja {first}"),
            };
            format!("{which} {what}.")
        }
    }
}

fn summary(job: BulkJob, c: &Counts) -> String {
    let label = command_label(job.command());
    let counts = match job {
        BulkJob::PullConsents => format!(
            "{label}: zakończono. Sprawdzono kontaktów: {}. Zaktualizowano: {}, bez zmian: {}, brak w pliku z SALESmanago (są w nim tylko kontakty wysłane z Dynamics): {}, pominięto (brak poprawnego e-maila): {}, błędy: {}.",
            c.total, c.done, c.same, c.missing, c.skipped, c.failed
        ),
        BulkJob::PullChanges => format!(
            "{label}: zakończono. Kontakty zmienione w SALESmanago: {}. Zaktualizowano w Dynamics: {}, bez zmian: {}, brak w Dynamics (nie tworzymy ich, jak oryginalna wtyczka): {}, błędy: {}.",
            c.total, c.done, c.same, c.missing, c.failed
        ),
        BulkJob::PullActivity => format!(
            "{label}: zakończono. Sprawdzono kontaktów: {}. Dodano do ich osi czasu aktywności: {}, były już: {}, kontaktów brak w SALESmanago: {}, błędy: {}.",
            c.total, c.done, c.same, c.missing, c.failed
        ),
        BulkJob::ExportChanges => format!(
            "{label}: zakończono. Kontakty zmienione w Dynamics od ostatniego nadrabiania: {}. Wysłano: {}, pominięto: {}, błędy: {}.",
            c.total, c.done, c.skipped, c.failed
        ),
        BulkJob::ExportSelected | BulkJob::ExportAll => format!(
            "{label}: zakończono. Kontakty: {}. Wysłano: {}, pominięto: {}, błędy: {}.",
            c.total, c.done, c.skipped, c.failed
        ),
    };
    let mut text = match c.outside {
        0 => counts,
        n => format!("{counts} Poza zakresem synchronizacji ustawionym w rekordzie integracji z SALESmanago: {n} (nie wysłano ich ani nie zmieniono)."),
    };
    if c.again > 0 {
        text +=
            &format!(" W tym wysłanych ponownie, bo od ich ostatniej wysyłki zmieniło się mapowanie pól: {}.", c.again);
    }
    if c.entered > 0 {
        text += &format!(" W tym wysłanych po powrocie do zakresu synchronizacji: {}.", c.entered);
    }
    text
}

fn relay(refusal: Refusal) -> String {
    match refusal {
        Refusal::Key => "Pośrednik odrzucił klucz. Wpisz jako klucz pośrednika w rekordzie Integracja z SALESmanago klucz otrzymany od jego administratora albo poproś o nowy.",
        Refusal::Origin => "Pośrednik nie przyjmuje wywołań z tego adresu Dynamics. Poproś jego administratora o dopisanie tego adresu do RELAY_ALLOWED_ORIGINS.",
        Refusal::Method => "Pośrednik nie przekazuje tej funkcji SALESmanago. Poproś jego administratora o aktualizację pośrednika do wersji tego rozwiązania.",
        Refusal::TooLarge => "Żądanie jest za duże dla pośrednika. Poproś jego administratora o zwiększenie RELAY_MAX_BODY_BYTES.",
        Refusal::Rate => "Pośrednik otrzymuje zbyt wiele żądań z tym kluczem. Spróbuj ponownie za minutę.",
        Refusal::Busy => "Pośrednik jest zajęty. Spróbuj ponownie za minutę.",
        Refusal::Unreachable => "Pośrednik nie może połączyć się z SALESmanago. Spróbuj ponownie za kilka minut; jeśli to się powtarza, poproś jego administratora o sprawdzenie SALESMANAGO_ENDPOINT i sieci.",
        Refusal::Timeout => "SALESmanago nie odpowiedziało pośrednikowi na czas. Spróbuj ponownie za kilka minut.",
        Refusal::File => "Pośrednik odrzucił adres pliku z SALESmanago (wygasł albo nie pochodzi od pośrednika). Uruchom zadanie ponownie.",
        Refusal::Redirect => "SALESmanago odpowiedziało pośrednikowi przekierowaniem na inny adres, za którym pośrednik nie podąża. Poproś jego administratora o sprawdzenie SALESMANAGO_ENDPOINT (konto mogło zostać przeniesione na inny serwer).",
        Refusal::AnswerTooLarge => "Odpowiedź SALESmanago jest większa, niż pośrednik przyjmuje. Poproś jego administratora o zwiększenie RELAY_MAX_ANSWER_BYTES albo wybierz mniej kontaktów.",
        Refusal::FileHost => "SALESmanago udostępniło plik na serwerze, z którego pośrednik nie pobiera plików. Poproś jego administratora o dopisanie tego serwera (podaje go dziennik pośrednika) do RELAY_FILE_HOSTS.",
        Refusal::Body => "Pośrednik nie mógł odczytać żądania: dotarło niekompletne albo zbyt wolno. Spróbuj ponownie; jeśli to się powtarza, sprawdź sieć między tą przeglądarką a pośrednikiem.",
    }
    .into()
}

/// A privilege Dataverse named in words (see the English).
fn privilege_words(privilege: &str) -> String {
    let Some((action, table)) = super::privilege_parts(privilege) else { return "wykonać tego żądania".into() };
    let action = match action {
        "Read" => "odczytać",
        "Write" => "zmienić",
        "Create" => "utworzyć",
        "Delete" => "usunąć",
        "Append" | "AppendTo" => "powiązać",
        "Assign" => "przypisać",
        _ => "udostępnić",
    };
    let table = match table {
        "new_salesmanagointegration" => "rekordu Integracja z SALESmanago",
        "new_salesmanagoactivity" => "aktywności SALESmanago",
        "contact" => "kontaktów",
        _ => "tych rekordów",
    };
    format!("{action} {table}")
}
