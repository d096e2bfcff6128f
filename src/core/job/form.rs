//! What a job asks of the form or grid it ran from (the contact commands alone ask): in both
//! engines, as the driver that does it is.

use crate::core::i18n::Message;
use crate::core::json::Map;

/// What a form or grid is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum FormAction {
    /// Set these columns as a user would (the form becomes dirty); reply with how many the
    /// form has.
    Fill(Map),
    /// Show the notification `id` at `level`, or clear it when `message` is `None`.
    Notify {
        /// Which notification.
        id: &'static str,
        /// How it shows.
        level: Level,
        /// What it says.
        message: Option<Message>,
    },
    /// Show what was written behind the form; `if_clean`: only when it has no unsaved changes.
    Refresh {
        /// Only when the form has no unsaved changes.
        if_clean: bool,
    },
    /// Refresh the grid the command ran from.
    RefreshGrid,
    /// Ask the user; reply with 1 when confirmed, 0 when not.
    Confirm(Message),
}

/// A form notification's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// A warning.
    Warning,
    /// An error.
    Error,
}

impl Level {
    /// The level as `setFormNotification` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}
