//! What the relay sends SALESmanago: the caller's fields as it wrote them, less any auth field,
//! and the relay's own signed auth fields. The caller's body is read as its top-level fields
//! only, each value kept as the caller's text (validated, never rebuilt), so a batch of 400
//! contacts costs one pass over its bytes, not a tree built and written again.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use salesmanago_dynamics::core::json::{Map, Value};

/// The auth fields the relay sets itself; a caller's are dropped.
pub(crate) const AUTH_FIELDS: [&str; 5] = ["clientId", "apiKey", "requestTime", "sha", "owner"];

/// The fields of a body to send.
pub(crate) enum Fields<'a> {
    /// A caller's, each value as it wrote it.
    Caller(BTreeMap<String, &'a RawValue>),
    /// The relay's own (a webhook's contact, the deep check).
    Own(Map),
}

impl<'a> Fields<'a> {
    /// The top-level fields of `body`, when it is a JSON object.
    pub(crate) fn of_caller(body: &'a [u8]) -> Option<Fields<'a>> {
        let text = std::str::from_utf8(body).ok()?;
        serde_json::from_str::<BTreeMap<String, &RawValue>>(text).ok().map(Fields::Caller)
    }

    /// The body to send: these fields, less any auth field, and `auth`.
    pub(crate) fn signed(self, auth: Map) -> String {
        match self {
            Fields::Own(mut fields) => {
                for field in AUTH_FIELDS {
                    fields.remove(field);
                }
                fields.extend(auth);
                Value::Object(fields).to_string()
            }
            Fields::Caller(fields) => {
                let size: usize = fields.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum();
                let mut out = String::with_capacity(size + 256);
                out.push('{');
                let theirs = fields.iter().filter(|(k, _)| !AUTH_FIELDS.contains(&k.as_str()));
                let ours = auth.iter().map(|(k, v)| (k, v.to_string()));
                let mut first = true;
                let mut put = |key: &str, value: &str| {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&Value::from(key).to_string());
                    out.push(':');
                    out.push_str(value);
                };
                for (key, value) in theirs {
                    put(key, value.get());
                }
                for (key, value) in ours {
                    put(key, &value);
                }
                out.push('}');
                out
            }
        }
    }
}

/// A random `apiKey`: 16 random bytes as 32 hex digits.
pub(crate) fn api_key() -> Option<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).ok()?;
    let mut key = String::with_capacity(32);
    for byte in random {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 15)]));
    }
    Some(key)
}

/// Random bits for a core job's request keys and jitter.
pub(crate) fn seed() -> u64 {
    let mut random = [0u8; 8];
    // Without the system's randomness, the time still tells two runs apart.
    if getrandom::fill(&mut random).is_err() {
        return crate::now_ms();
    }
    u64::from_le_bytes(random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use salesmanago_dynamics::core::json;

    fn auth() -> Map {
        let mut auth = Map::new();
        auth.insert("clientId".into(), "cid".into());
        auth.insert("sha".into(), "abc".into());
        auth
    }

    #[test]
    fn a_callers_fields_go_as_written_without_their_auth_fields() {
        let body = br#"{"contact":{"email":"a@b.pl","name":"Zo\u00eb \"Z\""},"tags":["A",1,null],"sha":"forged","owner":"x@y.z","we\"ird":1.50}"#;
        let sent = Fields::of_caller(body).unwrap().signed(auth());
        let value = json::from_str(&sent).unwrap();
        assert_eq!(value["contact"]["name"].as_str(), Some("Zoë \"Z\""));
        assert_eq!(value["sha"].as_str(), Some("abc"), "the relay's signature, not the caller's");
        assert!(value.get("owner").is_none(), "a caller's owner is dropped");
        assert!(sent.contains(r#""we\"ird":1.50"#), "values and keys as written: {sent}");
        assert!(sent.contains(r#""tags":["A",1,null]"#));
        for not_an_object in [&b"[1,2]"[..], b"\"x\"", b"{\"a\":", b"{\"a\":1} x", b"\xff"] {
            assert!(Fields::of_caller(not_an_object).is_none(), "{not_an_object:?}");
        }
        assert_eq!(Fields::of_caller(b"{}").unwrap().signed(auth()), r#"{"clientId":"cid","sha":"abc"}"#);
    }

    #[test]
    fn the_relays_own_fields_are_signed_too() {
        let mut own = Map::new();
        own.insert("email".into(), "a@b.pl".into());
        own.insert("apiKey".into(), "stale".into());
        let value = json::from_str(&Fields::Own(own).signed(auth())).unwrap();
        assert_eq!((value["email"].as_str(), value["clientId"].as_str()), (Some("a@b.pl"), Some("cid")));
        assert!(value.get("apiKey").is_none());
    }

    #[test]
    fn an_api_key_is_32_hex_digits_and_new_each_time() {
        let (a, b) = (api_key().unwrap(), api_key().unwrap());
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
