//! Removing a contact from SALESmanago once it is gone from Dynamics (a delete from the form or a
//! grid, a webhook's delete, or a delete the catch-up found), the same way on every path: unless
//! another Dynamics contact still holds its e-mail (the SALESmanago contact then stands for that
//! one, and stays), it is deleted in SALESmanago, or only opted out of both channels when the
//! record says so. A contact SALESmanago does not have is removed already.

use crate::core::dataverse::query::{encode, one_of};
use crate::core::dataverse::schema::contact;
use crate::core::json::Value;
use crate::core::mapping::normalize::email;
use crate::core::salesmanago::operation::{Channel, Delete, HasContact, SetSubscription};
use crate::prelude::*;

use super::runner::{Call, Error, Output, Request};

/// Where a removal is.
#[derive(Debug, Clone)]
enum Step {
    /// Asking Dataverse whether another contact holds the e-mail.
    Sharing,
    /// Asking SALESmanago whether it has the contact.
    Asking,
    /// Opting it out of this channel (the newsletter, then SMS).
    OptingOut(Channel),
    /// Deleting it in SALESmanago.
    Deleting,
}

/// How a removal ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removed {
    /// Deleted or opted out in SALESmanago, or it was not there.
    Gone,
    /// Another Dynamics contact holds the e-mail: the SALESmanago contact stays.
    Kept,
}

/// What comes after an answer.
pub(super) enum Next {
    /// Make this request, and hand its answer back.
    Ask(Removal, Request),
    /// Done.
    Done(Removed),
}

/// A removal under way.
#[derive(Debug, Clone)]
pub(super) struct Removal {
    step: Step,
    /// The address, as SALESmanago keys it.
    address: String,
    /// The contact removed (it may not be gone from Dynamics yet): not "another contact".
    own: String,
    opt_out_only: bool,
}

impl Removal {
    /// Starts removing the contact `own` whose e-mail was `raw`: the first request, or `None`
    /// when the e-mail is nothing SALESmanago could hold.
    pub(super) fn start(own: &str, raw: &str, opt_out_only: bool) -> Option<(Removal, Request)> {
        let address = email(raw.trim()).ok()?;
        let filter = encode(&one_of(contact::EMAIL, &[raw.trim().to_owned()]));
        let query = format!("?$select={}&$filter={filter}&$top=2", contact::ID);
        let removal = Removal { step: Step::Sharing, address, own: own.to_owned(), opt_out_only };
        Some((removal, Request::Read(query)))
    }

    /// Takes the answer to its last request.
    pub(super) fn on(self, result: Result<Output, Error>) -> Result<Next, Error> {
        let unsubscribe = |removal: Removal, channel| {
            let call = SetSubscription { email: removal.address.clone(), channel, subscribed: false };
            Next::Ask(Removal { step: Step::OptingOut(channel), ..removal }, Request::Call(Call::Subscribe(call)))
        };
        Ok(match (self.step.clone(), result?) {
            (Step::Sharing, Output::Page(rows, _)) => {
                let own = self.own.trim_matches(['{', '}']);
                let other = rows
                    .iter()
                    .any(|r| r.get(contact::ID).and_then(Value::as_str).is_some_and(|o| !o.eq_ignore_ascii_case(own)));
                if other {
                    Next::Done(Removed::Kept)
                } else {
                    let call = Call::Has(HasContact { email: self.address.clone() });
                    Next::Ask(Removal { step: Step::Asking, ..self }, Request::Call(call))
                }
            }
            (Step::Asking, Output::Contact(None)) => Next::Done(Removed::Gone),
            (Step::Asking, Output::Contact(Some(_))) if self.opt_out_only => unsubscribe(self, Channel::Newsletter),
            (Step::Asking, Output::Contact(Some(_))) => {
                let call = Call::Delete(Delete { email: self.address.clone(), permanently: false });
                Next::Ask(Removal { step: Step::Deleting, ..self }, Request::Call(call))
            }
            (Step::OptingOut(Channel::Newsletter), _) => unsubscribe(self, Channel::Sms),
            (Step::OptingOut(Channel::Sms) | Step::Deleting, _) => Next::Done(Removed::Gone),
            (Step::Sharing | Step::Asking, _) => {
                return Err(Error::Dataverse(crate::core::dataverse::error::DvError::Refused {
                    detail: "an answer of the wrong kind".into(),
                }))
            }
        })
    }
}
