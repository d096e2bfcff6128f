//! Relay keys: `<id>.<secret>` in the browser (the integration record's relay key column),
//! `<id>:<sha-256 of the secret, hex>` in the relay, which never stores a key itself. Several
//! keys can be valid at once, so one can be replaced while the other still works.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A key as the relay stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Names the key in the logs.
    pub id: String,
    hash: [u8; 32],
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl StoredKey {
    /// Reads `<id>:<64 hex digits>`.
    ///
    /// Fails saying what is wrong.
    pub fn parse(text: &str) -> Result<StoredKey, String> {
        let (id, digest) = text.split_once(':').ok_or_else(|| format!("{text:?} is not <id>:<sha-256 hex>"))?;
        if !valid_id(id) {
            return Err(format!("the key id {id:?} must be 1 to 32 letters, digits, - or _"));
        }
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the hash of key {id:?} must be 64 hex digits"));
        }
        let mut hash = [0; 32];
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(StoredKey { id: id.to_owned(), hash })
    }

    /// The stored form.
    pub fn text(&self) -> String {
        format!("{}:{}", self.id, hex(&self.hash))
    }
}

/// A new key with id `id`: the key for the integration record, and its stored form for the relay.
///
/// Fails when `id` is not a valid key id.
pub fn new_key(id: &str) -> Result<(String, StoredKey), String> {
    if !valid_id(id) {
        return Err(format!("the key id {id:?} must be 1 to 32 letters, digits, - or _"));
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| format!("no randomness: {e}"))?;
    let secret = hex(&random);
    Ok((format!("{id}.{secret}"), StoredKey { id: id.to_owned(), hash: hash(&secret) }))
}

/// The id of the stored key `presented` (`<id>.<secret>`) matches, if any. The secret is
/// compared with each stored hash in constant time.
pub fn verify<'a>(stored: &'a [StoredKey], presented: &str) -> Option<&'a str> {
    let (id, secret) = presented.split_once('.')?;
    let presented = hash(secret);
    let mut found = None;
    for key in stored {
        let same: bool = key.hash.ct_eq(&presented).into();
        if same && key.id == id {
            found = Some(key.id.as_str());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_verifies_against_its_stored_form_only() {
        let (key, stored) = new_key("k1").unwrap();
        let (other, other_stored) = new_key("k2").unwrap();
        let parsed = StoredKey::parse(&stored.text()).unwrap();
        let both = [parsed, other_stored];
        assert_eq!(verify(&both, &key), Some("k1"));
        assert_eq!(verify(&both, &other), Some("k2"));
        assert_eq!(verify(&both, &key.replace("k1.", "k2.")), None, "a secret under another id");
        assert_eq!(verify(&both, &format!("{key}0")), None);
        assert_eq!(verify(&both, "k1"), None);
        assert!(!stored.text().contains(key.split_once('.').unwrap().1), "the stored form holds no secret");
    }

    #[test]
    fn bad_stored_keys_are_named() {
        assert!(StoredKey::parse("k1").is_err());
        assert!(StoredKey::parse("k 1:00").is_err());
        assert!(StoredKey::parse(&format!("k1:{}", "g".repeat(64))).is_err());
        assert!(new_key("").is_err());
    }
}
