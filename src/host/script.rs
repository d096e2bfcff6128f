//! Runs a [`ScriptCall`] (the JSON form of a SALESmanago call) through a [`Connection`],
//! splitting calls that exceed a method's limit, and returns the output as JSON.

use serde_json::{json, Value};

use crate::core::salesmanago::operation::{BatchOutcome, BatchUpsert, Delete, HasContact, ListUsers, Lookup};
use crate::core::salesmanago::operation::{ModifiedContacts, SetSubscription, Upsert};
use crate::core::salesmanago::script::ScriptCall;
use crate::core::salesmanago::SmError;

use super::salesmanago::Connection;

/// The output of `call`, as JSON.
pub(crate) async fn execute(connection: &Connection, call: ScriptCall) -> Result<Value, SmError> {
    let output = match call {
        ScriptCall::Upsert(details) => json!({"contactId": connection.call(&Upsert(*details)).await?}),
        ScriptCall::BatchUpsert { upsert_details } => {
            let mut outcome = BatchOutcome::default();
            for batch in BatchUpsert::batches(&upsert_details) {
                let part = connection.call(&batch).await?;
                outcome.ids.extend(part.ids);
                outcome.failed.extend(part.failed);
            }
            json!(outcome)
        }
        ScriptCall::Delete { email, permanently } => {
            connection.call(&Delete { email, permanently }).await?;
            json!({})
        }
        ScriptCall::HasContact { email } => json!({"contactId": connection.call(&HasContact { email }).await?}),
        ScriptCall::Lookup { email, id, contact_id } => {
            let (kind, keys) = ScriptCall::lookup(email, id, contact_id);
            let mut contacts = Vec::new();
            for lookup in Lookup::batches(kind, &keys) {
                contacts.extend(connection.call(&lookup).await?);
            }
            json!({"contacts": contacts})
        }
        ScriptCall::Modified { from, to, page } => json!(connection.call(&ModifiedContacts { from, to, page }).await?),
        ScriptCall::ListUsers {} => json!({"users": connection.call(&ListUsers).await?}),
        ScriptCall::Subscription { email, channel, subscribed } => {
            json!({"contactId": connection.call(&SetSubscription { email, channel, subscribed }).await?})
        }
    };
    Ok(output)
}
