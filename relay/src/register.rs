//! `salesmanago-relay register` and `unregister`: the webhook's service endpoint, its steps on
//! contact Create, Update and Delete, and their images, made (or removed) through the Web API
//! as the application user, with no plug-in tool. Running `register` again brings an existing
//! registration up to date (a new address, a rotated key, consent columns added since, a changed
//! field mapping or sync scope) instead
//! of adding a second one. What is registered is defined once, in
//! [`salesmanago_dynamics::core::dataverse::registration`].

use salesmanago_dynamics::core::dataverse::registration::{self, ENDPOINT_NAME};
use salesmanago_dynamics::core::dataverse::schema::{self, contact, integration as columns_of};
use salesmanago_dynamics::core::i18n::{self, Lang, Message};
use salesmanago_dynamics::core::integration;
use salesmanago_dynamics::core::json::{Map, Value};

use crate::dataverse::{Dataverse, DataverseError};

/// Why a registration stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// Dataverse refused or could not be reached.
    Dataverse(DataverseError),
    /// Dataverse has no such message or filter (not an org with contacts?).
    Missing(String),
    /// The integration record's field mapping or sync scope cannot be read.
    Settings(String),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Dataverse(DataverseError::Status(403)) => f.write_str(
                "Dataverse refused (403): the application user needs the System Customizer or System Administrator role to register steps",
            ),
            RegisterError::Dataverse(error) => write!(f, "Dataverse: {error:?}"),
            RegisterError::Missing(what) => write!(f, "Dataverse has no {what}"),
            RegisterError::Settings(why) => f.write_str(why),
        }
    }
}

impl From<DataverseError> for RegisterError {
    fn from(error: DataverseError) -> RegisterError {
        RegisterError::Dataverse(error)
    }
}

/// What `register` did, a line each (for the admin).
pub type Report = Vec<String>;

/// The ids of the rows of `set` matching `filter`.
async fn ids(dataverse: &Dataverse, set: &str, key: &str, filter: &str) -> Result<Vec<String>, DataverseError> {
    let page = dataverse.get(&format!("{set}?$select={key}&$filter={}", encode(filter))).await?;
    Ok(page
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|row| row.get(key).and_then(Value::as_str).map(str::to_owned))
        .collect())
}

/// Creates the row of `set` or, when `existing` holds one, updates it; its id.
async fn put(
    dataverse: &Dataverse,
    set: &str,
    existing: Option<String>,
    body: &Map,
    what: &str,
    report: &mut Report,
) -> Result<String, DataverseError> {
    match existing {
        Some(id) => {
            dataverse.patch(&format!("{set}({id})"), body).await?;
            report.push(format!("updated {what}"));
            Ok(id)
        }
        None => {
            let id = dataverse.create(set, body).await?;
            report.push(format!("created {what}"));
            Ok(id)
        }
    }
}

/// The contact columns whose changes go to SALESmanago beside the standard ones: the consent
/// columns in the table's metadata, and the admin's mapped columns and scope column on the
/// integration record.
async fn columns(dataverse: &Dataverse) -> Result<Vec<String>, RegisterError> {
    // The record's columns as every command reads them: the mapping and the scope among them.
    let query = format!("{}?$select={}&$top=2", columns_of::ENTITY_SET, integration::SELECT.join(","));
    let (attributes, records) = tokio::join!(dataverse.get(schema::CONTACT_ATTRIBUTES), dataverse.get(&query));
    let consents = schema::consent_columns(&Value::Object(attributes?));
    let records = records?;
    let rows: Vec<&Map> =
        records.get("value").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    let record = match rows.as_slice() {
        [row] => (*row).clone(),
        _ => Map::new(),
    };
    let behaviour = integration::behaviour(&record)
        .map_err(|error| RegisterError::Settings(i18n::text(&Message::Settings(error), Lang::En)))?;
    Ok(integration::read_columns(&consents, &behaviour.mapping, &behaviour.scope))
}

/// Registers the webhook at `url` with `key`, or brings the registration up to date.
pub async fn register(dataverse: &Dataverse, url: &str, key: &str) -> Result<Report, RegisterError> {
    let mut report = Report::new();
    let existing =
        ids(dataverse, "serviceendpoints", "serviceendpointid", &format!("name eq '{ENDPOINT_NAME}'")).await?;
    let body = registration::endpoint(url, key);
    let endpoint =
        put(dataverse, "serviceendpoints", existing.into_iter().next(), &body, "the service endpoint", &mut report)
            .await?;
    for step in registration::steps(&columns(dataverse).await?) {
        let message = ids(dataverse, "sdkmessages", "sdkmessageid", &format!("name eq '{}'", step.message))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| RegisterError::Missing(format!("message {}", step.message)))?;
        let filter = format!("primaryobjecttypecode eq '{}' and _sdkmessageid_value eq {message}", contact::TABLE);
        let filter = ids(dataverse, "sdkmessagefilters", "sdkmessagefilterid", &filter)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| RegisterError::Missing(format!("filter for {} of contact", step.message)))?;
        let mine = format!("_eventhandler_value eq {endpoint} and _sdkmessageid_value eq {message}");
        let existing = ids(dataverse, "sdkmessageprocessingsteps", "sdkmessageprocessingstepid", &mine).await?;
        let body = registration::step(&step, &endpoint, &message, &filter);
        let what = format!("the {} step", step.message);
        let step_id =
            put(dataverse, "sdkmessageprocessingsteps", existing.into_iter().next(), &body, &what, &mut report).await?;
        let mine = format!("_sdkmessageprocessingstepid_value eq {step_id} and entityalias eq '{}'", step.image.alias);
        let existing =
            ids(dataverse, "sdkmessageprocessingstepimages", "sdkmessageprocessingstepimageid", &mine).await?;
        let body = registration::image(&step.image, &step_id);
        let what = format!("its {}", step.image.alias);
        put(dataverse, "sdkmessageprocessingstepimages", existing.into_iter().next(), &body, &what, &mut report)
            .await?;
    }
    Ok(report)
}

/// Removes the registration: images, steps, then the endpoint. Nothing registered: nothing done.
pub async fn unregister(dataverse: &Dataverse) -> Result<Report, RegisterError> {
    let mut report = Report::new();
    let endpoints =
        ids(dataverse, "serviceendpoints", "serviceendpointid", &format!("name eq '{ENDPOINT_NAME}'")).await?;
    for endpoint in endpoints {
        let steps = ids(
            dataverse,
            "sdkmessageprocessingsteps",
            "sdkmessageprocessingstepid",
            &format!("_eventhandler_value eq {endpoint}"),
        )
        .await?;
        for step in steps {
            let filter = format!("_sdkmessageprocessingstepid_value eq {step}");
            for image in
                ids(dataverse, "sdkmessageprocessingstepimages", "sdkmessageprocessingstepimageid", &filter).await?
            {
                dataverse.delete(&format!("sdkmessageprocessingstepimages({image})")).await?;
            }
            dataverse.delete(&format!("sdkmessageprocessingsteps({step})")).await?;
            report.push("removed a step and its image".into());
        }
        dataverse.delete(&format!("serviceendpoints({endpoint})")).await?;
        report.push("removed the service endpoint".into());
    }
    Ok(report)
}

/// Percent-encodes a `$filter` value for the query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'(' | b')' | b',' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
