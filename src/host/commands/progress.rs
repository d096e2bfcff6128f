//! What a job shows while it runs: how many contacts it has handled and, while a service has
//! asked it to slow down, which one and for how long.

use std::cell::Cell;
use std::rc::Rc;

use crate::core::command::Command;
use crate::core::i18n::{text, Lang, Message, Service};

use super::super::browser::{now_ms, OnWait};
use super::super::dynamics::Ui;
use super::Context;

/// A job's progress indicator.
pub(super) struct Progress {
    ui: Ui,
    lang: Lang,
    command: Command,
    total: Option<u64>,
    done: Cell<u64>,
    /// The service that asked to wait, and until when (Unix ms).
    wait: Cell<Option<(Service, u64)>>,
}

impl Progress {
    /// The progress of `command` over `total` contacts, if known.
    pub(super) fn new(context: &Context, command: Command, total: Option<u64>) -> Rc<Progress> {
        let wait = Cell::new(None);
        Rc::new(Progress { ui: context.ui(), lang: context.lang, command, total, done: Cell::new(0), wait })
    }

    /// Shows `done` contacts handled, and a wait still under way.
    pub(super) fn done(&self, done: u64) {
        self.done.set(done);
        self.show();
    }

    /// What `service`'s calls tell of each wait they make.
    pub(super) fn on_wait(self: &Rc<Self>, service: Service) -> OnWait {
        let progress = Rc::clone(self);
        Rc::new(move |ms| {
            let until = now_ms() + ms;
            if progress.wait.get().is_none_or(|(_, later)| later <= until) {
                progress.wait.set(Some((service, until)));
            }
            progress.show();
        })
    }

    fn show(&self) {
        let (command, done, total) = (self.command, self.done.get(), self.total);
        let now = now_ms();
        let message = match self.wait.get() {
            Some((service, until)) if until > now => {
                Message::Waiting { command, done, total, service, seconds: (until - now).div_ceil(1000) }
            }
            _ => Message::Progress { command, done, total },
        };
        self.ui.progress(&text(&message, self.lang));
    }

    /// Closes the indicator.
    pub(super) fn close(&self) {
        self.ui.close_progress();
    }
}
