//! Dataverse Web API `$batch` (OData multipart/mixed): many updates in one HTTP request, each
//! independent of the others (no change set), so one failure does not undo the rest.

use crate::core::json::{Map, Value};
use crate::prelude::*;

/// The most operations Dataverse takes in one batch.
pub const MAX_OPERATIONS: usize = 1000;

/// A `$batch` request body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchBody {
    /// `multipart/mixed; boundary=…`.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// PATCHes of existing `entity_set` rows (`If-Match: *`): `(id, columns)`. `service_root` is
/// the Web API root, such as `https://org.crm4.dynamics.com/api/data/v9.2/`; `tag` makes the
/// boundary unique.
pub fn updates(service_root: &str, entity_set: &str, rows: &[(String, Map)], tag: &str) -> BatchBody {
    patches(service_root, entity_set, rows, tag, "If-Match: *")
}

/// Creations of `entity_set` rows with the ids given, each only if no row has that id: an
/// upsert that never updates (`If-None-Match: *`), so a row already there answers `412` and
/// stays as it is ([`created`]).
pub fn creations(service_root: &str, entity_set: &str, rows: &[(String, Map)], tag: &str) -> BatchBody {
    patches(service_root, entity_set, rows, tag, "If-None-Match: *")
}

fn patches(service_root: &str, entity_set: &str, rows: &[(String, Map)], tag: &str, condition: &str) -> BatchBody {
    let boundary = format!("batch_{tag}");
    let mut body = String::new();
    for (id, columns) in rows {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        ));
        body.push_str(&format!("PATCH {service_root}{entity_set}({id}) HTTP/1.1\r\n"));
        body.push_str(&format!("Content-Type: application/json\r\n{condition}\r\n\r\n"));
        body.push_str(&Value::Object(columns.clone()).to_string());
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    BatchBody { content_type: format!("multipart/mixed; boundary={boundary}"), body }
}

/// The outcome of each operation of a batch response, in order: `Ok` for a 2xx status, else
/// the error's message (or the status line).
pub fn outcomes(response: &str) -> Vec<Result<(), String>> {
    statuses(response)
        .into_iter()
        .map(|(status, message)| if (200..300).contains(&status) { Ok(()) } else { Err(message) })
        .collect()
}

/// The outcome of each creation of a [`creations`] batch, in order: `Ok(true)` created,
/// `Ok(false)` there already (`412`), else the error's message.
pub fn created(response: &str) -> Vec<Result<bool, String>> {
    statuses(response)
        .into_iter()
        .map(|(status, message)| match status {
            200..=299 => Ok(true),
            412 => Ok(false),
            _ => Err(message),
        })
        .collect()
}

/// Each part's status, and its error's message (or its status line).
fn statuses(response: &str) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let mut lines = response.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("HTTP/1.1 ") else { continue };
        let status: u16 = rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
        if (200..300).contains(&status) {
            out.push((status, String::new()));
            continue;
        }
        // The part's body follows its headers: the first JSON line carries the message.
        let mut message = rest.to_owned();
        while let Some(next) = lines.peek() {
            if next.starts_with("--") || next.starts_with("HTTP/1.1 ") {
                break;
            }
            let next = lines.next().unwrap_or_default();
            if let Ok(Value::Object(json)) = crate::core::json::from_str(next.trim()) {
                if let Some(text) = json.get("error").and_then(|e| e.get("message")).and_then(Value::as_str) {
                    message = text.to_owned();
                }
            }
        }
        out.push((status, message));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    #[test]
    fn updates_are_independent_patches() {
        let columns = json!({"new_salesmanagoid": "sm-1"}).as_object().unwrap().clone();
        let batch = updates(
            "https://org/api/data/v9.2/",
            "contacts",
            &[("c1".into(), columns.clone()), ("c2".into(), columns)],
            "t1",
        );
        assert_eq!(batch.content_type, "multipart/mixed; boundary=batch_t1");
        assert_eq!(batch.body.matches("PATCH https://org/api/data/v9.2/contacts(").count(), 2);
        assert!(batch.body.contains("PATCH https://org/api/data/v9.2/contacts(c2) HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n{\"new_salesmanagoid\":\"sm-1\"}\r\n"));
        assert!(batch.body.ends_with("--batch_t1--\r\n"));
        assert!(!batch.body.contains("changeset"), "no change set: one failure must not undo the rest");
    }

    #[test]
    fn creations_never_update_and_a_row_there_already_is_not_a_failure() {
        let columns = json!({"subject": "x"}).as_object().unwrap().clone();
        let batch =
            creations("https://org/api/data/v9.2/", "new_salesmanagoactivities", &[("a1".into(), columns)], "t");
        assert!(batch.body.contains("PATCH https://org/api/data/v9.2/new_salesmanagoactivities(a1) HTTP/1.1\r\nContent-Type: application/json\r\nIf-None-Match: *\r\n"));
        assert!(!batch.body.contains("If-Match"));
        let response = "--b\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n--b\r\n\r\nHTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"0x80040237\",\"message\":\"A record with matching key values already exists.\"}}\r\n--b\r\n\r\nHTTP/1.1 400 Bad Request\r\n\r\n{\"error\":{\"message\":\"bad\"}}\r\n--b--\r\n";
        assert_eq!(created(response), vec![Ok(true), Ok(false), Err("bad".into())]);
    }

    #[test]
    fn outcomes_follow_the_parts_in_order() {
        let response = "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\r\n\r\n--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"0x80040217\",\"message\":\"contact With Id = c2 Does Not Exist\"}}\r\n--batchresponse_1\r\n\r\nHTTP/1.1 412 Precondition Failed\r\n\r\n--batchresponse_1--\r\n";
        assert_eq!(
            outcomes(response),
            vec![Ok(()), Err("contact With Id = c2 Does Not Exist".into()), Err("412 Precondition Failed".into())]
        );
    }
}
