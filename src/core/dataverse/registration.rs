//! What the relay registers in Dataverse so that every change of a contact reaches it: a webhook
//! service endpoint, and asynchronous post-operation steps on contact Create, Update and Delete,
//! each with the image [`super::event::plan`] needs. Built here, as plain Web API bodies, so the
//! relay's `register` and the tests read one definition.
//!
//! The contract, as public registration code and Microsoft's table reference give it (no org
//! could be reached from here):
//! - `serviceendpoint`: `contract` 8 (Webhook), `messageformat` 2 (JSON), `authtype` 5
//!   (HttpHeader) with `authvalue` `<settings><setting name="…" value="…" /></settings>`.
//! - `sdkmessageprocessingstep`: `stage` 40 (post-operation), `mode` 1 (asynchronous),
//!   `supporteddeployment` 0 (server), bound to the endpoint (`eventhandler_serviceendpoint`),
//!   the message (`sdkmessageid`) and the message's filter for `contact` (`sdkmessagefilterid`);
//!   `filteringattributes` (comma-separated) on Update only. `asyncautodelete` keeps the system
//!   jobs of failed deliveries only, for an admin to see.
//! - `sdkmessageprocessingstepimage`: `imagetype` 0 (pre) or 1 (post), `entityalias`,
//!   `attributes`, and `messagepropertyname`: `Id` on Create (Dataverse refuses `Target`
//!   there), `Target` on Update and Delete.

use crate::core::json::{Map, Value};
use crate::core::sync::{is_synchronised_with, logical};
use crate::prelude::*;

use super::query::contact_columns;
use super::schema::contact;

/// The service endpoint's name: `register` finds its own registration by it.
pub const ENDPOINT_NAME: &str = "SALESmanago relay";

/// The header carrying the webhook key (authentication type HttpHeader).
pub const KEY_HEADER: &str = "x-relay-webhook-key";

/// The relay's webhook path, under its public address.
pub const WEBHOOK_PATH: &str = "/dataverse/webhook";

/// One step to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The message: `Create`, `Update` or `Delete`.
    pub message: &'static str,
    /// The columns whose change fires the step (Update only).
    pub filtering: Option<String>,
    /// The image the event needs.
    pub image: Image,
}

/// An entity image of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its alias in the event (`PreImage`, `PostImage`).
    pub alias: &'static str,
    /// 0: before the change; 1: after it.
    pub kind: u8,
    /// The message property it images (`Id` on Create, else `Target`).
    pub property: &'static str,
    /// The columns it holds, comma-separated.
    pub attributes: String,
}

/// The three steps, for an org whose synchronisation reads the columns `consents` besides the
/// standard ones (the consent columns, the admin's mapped columns, the scope's column).
///
/// Create and Update carry a post-image of every column the mapping reads, so the relay sends
/// without reading the contact back; Update fires only for the synchronised columns (never for
/// the integration's own status columns: no echo); Delete carries a pre-image with the e-mail.
pub fn steps(consents: &[String]) -> Vec<Step> {
    // Images and filters name a lookup by its logical name, not as `$select` does.
    let columns: Vec<String> = contact_columns(consents).iter().map(|c| logical(c).to_owned()).collect();
    // The row's version orders changes of one second ([`super::burst`]); not a filtering one.
    let imaged: Vec<&str> = columns.iter().map(String::as_str).chain([contact::VERSION]).collect();
    let after = |property| Image { alias: "PostImage", kind: 1, property, attributes: imaged.join(",") };
    let filtering: Vec<&str> =
        columns.iter().map(String::as_str).filter(|c| is_synchronised_with(c, consents)).collect();
    vec![
        Step { message: "Create", filtering: None, image: after("Id") },
        Step { message: "Update", filtering: Some(filtering.join(",")), image: after("Target") },
        Step {
            message: "Delete",
            filtering: None,
            image: Image {
                alias: "PreImage",
                kind: 0,
                property: "Target",
                attributes: [contact::ID, contact::EMAIL].join(","),
            },
        },
    ]
}

/// The service endpoint: a webhook to `url` showing `key` in [`KEY_HEADER`].
pub fn endpoint(url: &str, key: &str) -> Map {
    let authvalue = format!("<settings><setting name=\"{KEY_HEADER}\" value=\"{}\" /></settings>", xml_attr(key));
    let mut body = Map::new();
    body.insert("name".into(), ENDPOINT_NAME.into());
    body.insert("url".into(), url.into());
    body.insert("contract".into(), Value::from(8));
    body.insert("messageformat".into(), Value::from(2));
    body.insert("authtype".into(), Value::from(5));
    body.insert("authvalue".into(), authvalue.into());
    body.insert("description".into(), "Sends contact changes to SALESmanago (salesmanago-relay register)".into());
    body
}

/// The step's body, bound to its endpoint, message and the message's filter for contacts.
pub fn step(step: &Step, endpoint_id: &str, message_id: &str, filter_id: &str) -> Map {
    let mut body = Map::new();
    body.insert("name".into(), format!("{ENDPOINT_NAME}: {} of contact", step.message).into());
    body.insert("stage".into(), Value::from(40));
    body.insert("mode".into(), Value::from(1));
    body.insert("rank".into(), Value::from(1));
    body.insert("supporteddeployment".into(), Value::from(0));
    body.insert("asyncautodelete".into(), Value::Bool(true));
    body.insert("filteringattributes".into(), step.filtering.clone().map_or(Value::Null, Value::from));
    body.insert("eventhandler_serviceendpoint@odata.bind".into(), format!("/serviceendpoints({endpoint_id})").into());
    body.insert("sdkmessageid@odata.bind".into(), format!("/sdkmessages({message_id})").into());
    body.insert("sdkmessagefilterid@odata.bind".into(), format!("/sdkmessagefilters({filter_id})").into());
    body
}

/// The image's body, on step `step_id`.
pub fn image(image: &Image, step_id: &str) -> Map {
    let mut body = Map::new();
    body.insert("name".into(), image.alias.into());
    body.insert("entityalias".into(), image.alias.into());
    body.insert("imagetype".into(), Value::from(image.kind));
    body.insert("messagepropertyname".into(), image.property.into());
    body.insert("attributes".into(), image.attributes.clone().into());
    body.insert(
        "sdkmessageprocessingstepid@odata.bind".into(),
        format!("/sdkmessageprocessingsteps({step_id})").into(),
    );
    body
}

fn xml_attr(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dataverse::event::{plan, Event, Plan};

    fn consents() -> Vec<String> {
        vec!["new_consent_marketing".into()]
    }

    #[test]
    fn update_fires_for_synchronised_columns_only() {
        let update = steps(&consents()).into_iter().find(|s| s.message == "Update").unwrap();
        let filtering = update.filtering.unwrap();
        let filtering: Vec<&str> = filtering.split(',').collect();
        for column in ["emailaddress1", "firstname", "donotbulkemail", "new_donotsms", "new_consent_marketing"] {
            assert!(filtering.contains(&column), "{column}");
        }
        for own in ["new_salesmanagoid", "new_salesmanagosyncstatus", "new_salesmanagosyncedon", "modifiedon"] {
            assert!(!filtering.contains(&own), "{own} would echo the write-back");
        }
        assert!(update.image.attributes.split(',').any(|c| c == "new_consent_marketing"));
    }

    #[test]
    fn images_image_the_property_each_message_allows() {
        let steps = steps(&[]);
        let by = |m: &str| steps.iter().find(|s| s.message == m).unwrap().image.clone();
        assert_eq!((by("Create").kind, by("Create").property), (1, "Id"));
        assert_eq!((by("Update").kind, by("Update").property), (1, "Target"));
        assert_eq!((by("Delete").kind, by("Delete").property), (0, "Target"));
        assert!(by("Delete").attributes.split(',').any(|c| c == "emailaddress1"));
    }

    #[test]
    fn an_event_with_the_registered_images_needs_no_read_back() {
        // A Create whose post-image holds what the Update step's image holds: the plan sends it.
        let columns = steps(&consents())[0].image.attributes.clone();
        assert!(columns.contains("emailaddress1"));
        let body = r#"{"MessageName":"Create","PrimaryEntityName":"contact","PrimaryEntityId":"2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10",
            "InputParameters":[{"key":"Target","value":{"LogicalName":"contact","Id":"2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10",
              "Attributes":[{"key":"emailaddress1","value":"jan@example.com"}]}}],
            "PostEntityImages":[{"key":"PostImage","value":{"LogicalName":"contact","Id":"2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10",
              "Attributes":[{"key":"emailaddress1","value":"jan@example.com"},{"key":"firstname","value":"Jan"}]}}],
            "PreEntityImages":[],"Depth":1,"OperationId":"00000000-0000-0000-0000-000000000001"}"#;
        let event = Event::parse(body, false).unwrap();
        assert!(matches!(plan(&event, None), Plan::Send { .. }));
    }

    #[test]
    fn the_key_is_escaped_in_the_header_settings() {
        let body = endpoint("https://relay.example.com/dataverse/webhook", "id.se\"cr<et");
        let authvalue = body["authvalue"].as_str().unwrap();
        assert_eq!(
            authvalue,
            "<settings><setting name=\"x-relay-webhook-key\" value=\"id.se&quot;cr&lt;et\" /></settings>"
        );
        assert_eq!(body["contract"], 8);
        assert_eq!(body["authtype"], 5);
        assert_eq!(body["messageformat"], 2);
    }

    #[test]
    fn steps_bind_their_endpoint_message_and_filter() {
        let update = &steps(&[])[1];
        let body = step(update, "e", "m", "f");
        assert_eq!(body["eventhandler_serviceendpoint@odata.bind"], "/serviceendpoints(e)");
        assert_eq!(body["sdkmessageid@odata.bind"], "/sdkmessages(m)");
        assert_eq!(body["sdkmessagefilterid@odata.bind"], "/sdkmessagefilters(f)");
        assert_eq!((body["stage"].as_u64(), body["mode"].as_u64()), (Some(40), Some(1)));
        assert!(step(&steps(&[])[0], "e", "m", "f")["filteringattributes"].is_null());
        assert_eq!(image(&update.image, "s")["sdkmessageprocessingstepid@odata.bind"], "/sdkmessageprocessingsteps(s)");
    }
}
