//! Runs a [`ScriptCall`] (the JSON form of a SALESmanago call) through a [`Connection`],
//! splitting calls that exceed a method's limit, and returns the output as JSON.

use crate::prelude::*;

use crate::core::json::{ToJson, Value};
use crate::object;

use crate::core::salesmanago::operation::{BatchOutcome, BatchUpsert, Delete, HasContact, ListUsers, Lookup};
use crate::core::salesmanago::operation::{ModifiedContacts, SetSubscription, Upsert};
use crate::core::salesmanago::script::ScriptCall;
use crate::core::salesmanago::SmError;

use super::salesmanago::Connection;

/// The output of `call`, as JSON.
pub(crate) async fn execute(connection: &Connection, call: ScriptCall) -> Result<Value, SmError> {
    let output = match call {
        ScriptCall::Upsert(details) => object! {"contactId": connection.call(&Upsert(*details)).await?},
        ScriptCall::BatchUpsert { upsert_details } => {
            let mut outcome = BatchOutcome::default();
            for batch in BatchUpsert::batches(&upsert_details) {
                let part = connection.call(&batch).await?;
                outcome.ids.extend(part.ids);
                outcome.failed.extend(part.failed);
            }
            outcome.to_json()
        }
        ScriptCall::Delete { email, permanently } => {
            connection.call(&Delete { email, permanently }).await?;
            object! {}
        }
        ScriptCall::HasContact { email } => object! {"contactId": connection.call(&HasContact { email }).await?},
        ScriptCall::Lookup { email, id, contact_id } => {
            let (kind, keys) = ScriptCall::lookup(email, id, contact_id);
            let mut contacts = Vec::new();
            for lookup in Lookup::batches(kind, &keys) {
                contacts.extend(connection.call(&lookup).await?);
            }
            object! {"contacts": contacts}
        }
        ScriptCall::Modified { from, to, page } => {
            connection.call(&ModifiedContacts { from, to, page }).await?.to_json()
        }
        ScriptCall::ListUsers {} => object! {"users": connection.call(&ListUsers).await?},
        ScriptCall::Subscription { email, channel, subscribed } => {
            object! {"contactId": connection.call(&SetSubscription { email, channel, subscribed }).await?}
        }
    };
    Ok(output)
}
