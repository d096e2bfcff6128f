//! User-visible text: the only place it is built. English and Polish catalogues are
//! exhaustive matches, so a message without a translation does not compile.

mod en;
mod pl;

use crate::core::command::Command;

/// The user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default for every language we do not translate to).
    En,
    /// Polish.
    Pl,
}

impl Lang {
    /// The language for a Windows LCID as Dynamics reports it (`userSettings.languageId`,
    /// the `userlcid` page parameter): 1045 is Polish, anything else English.
    pub const fn from_lcid(lcid: u32) -> Lang {
        match lcid {
            1045 => Lang::Pl,
            _ => Lang::En,
        }
    }
}

/// Something the product tells a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Heading of the credential page.
    CredentialsTitle,
    /// Label of the client id field.
    ClientIdLabel,
    /// Label of the API secret field.
    ApiSecretLabel,
    /// Label of the owner e-mail field.
    OwnerLabel,
    /// Label of the endpoint field.
    EndpointLabel,
    /// Shown in place of a stored secret, which is never displayed again.
    SecretSaved,
    /// Footer of the credential page: the engine version.
    EngineVersion {
        /// The engine version.
        version: &'static str,
    },
    /// The label of a command, as on its button.
    CommandLabel(Command),
    /// A command whose behaviour this build does not have yet.
    CommandNotAvailable {
        /// The command.
        command: Command,
        /// The engine version.
        version: &'static str,
    },
    /// `commands.js` asked for a command the engine does not know (a packaging mistake).
    UnknownCommand {
        /// The name it asked for.
        name: String,
    },
}

/// The text of `message` in `lang`.
pub fn text(message: &Message, lang: Lang) -> String {
    match lang {
        Lang::En => en::text(message),
        Lang::Pl => pl::text(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_message() -> Vec<Message> {
        let mut all = vec![
            Message::CredentialsTitle,
            Message::ClientIdLabel,
            Message::ApiSecretLabel,
            Message::OwnerLabel,
            Message::EndpointLabel,
            Message::SecretSaved,
            Message::EngineVersion { version: "9.9.9" },
            Message::UnknownCommand { name: "x.y".into() },
        ];
        for command in Command::ALL {
            all.push(Message::CommandLabel(command));
            all.push(Message::CommandNotAvailable { command, version: "9.9.9" });
        }
        all
    }

    #[test]
    fn lcid_picks_the_language() {
        assert_eq!(Lang::from_lcid(1045), Lang::Pl);
        assert_eq!(Lang::from_lcid(1033), Lang::En);
        assert_eq!(Lang::from_lcid(1031), Lang::En);
        assert_eq!(Lang::from_lcid(0), Lang::En);
    }

    #[test]
    fn every_message_is_translated_and_not_empty() {
        for message in every_message() {
            let en = text(&message, Lang::En);
            let pl = text(&message, Lang::Pl);
            assert!(!en.trim().is_empty() && !pl.trim().is_empty(), "{message:?}");
            let language_neutral = matches!(message, Message::EngineVersion { .. });
            assert!(language_neutral || en != pl, "{message:?} is not translated: {en}");
        }
    }

    #[test]
    fn messages_carry_their_details() {
        let not_available = Message::CommandNotAvailable { command: Command::PullChanges, version: "1.2.3" };
        for lang in [Lang::En, Lang::Pl] {
            let t = text(&not_available, lang);
            assert!(t.contains("1.2.3"), "{t}");
            assert!(t.contains(&text(&Message::CommandLabel(Command::PullChanges), lang)), "{t}");
            assert!(text(&Message::UnknownCommand { name: "contact.frob".into() }, lang).contains("contact.frob"));
        }
    }
}
