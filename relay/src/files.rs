//! The files SALESmanago hands out (an export's `fileUrl`), reached through the relay: the
//! relay rewrites each address in a `job/status` answer into one of its own, signed with a key
//! derived from the API secret and valid for a day, so the browser never needs SALESmanago's
//! file host, and the relay fetches only addresses it handed out itself. Any instance with the
//! same secret can serve them: nothing is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_dynamics::core::salesmanago::endpoint::is_file_address;

/// How long a handed-out address works.
const VALID_S: u64 = 24 * 3600;

/// Signs and checks the relay's file addresses.
pub(crate) struct FileSigner {
    key: [u8; 32],
}

impl FileSigner {
    /// A signer whose key is derived from `secret` (the API secret).
    pub(crate) fn new(secret: &[u8]) -> FileSigner {
        let mut hasher = Sha256::new();
        hasher.update(b"salesmanago-relay files\0");
        hasher.update(secret);
        FileSigner { key: hasher.finalize().into() }
    }

    fn mac(&self, expires: u64, address: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{expires}/{address}").as_bytes());
        mac
    }

    /// The path under the relay for `url`, valid until `now_s + 1 day`.
    pub(crate) fn path(&self, url: &str, now_s: u64) -> String {
        let expires = now_s + VALID_S;
        let address = URL_SAFE_NO_PAD.encode(url);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(expires, &address).finalize().into_bytes());
        format!("/files/{expires}/{sig}/{address}")
    }

    /// The SALESmanago address a path of [`FileSigner::path`] stands for, when its signature
    /// holds, it has not expired, and it is an address the engine itself would download.
    pub(crate) fn open(&self, expires: &str, sig: &str, address: &str, now_s: u64) -> Option<String> {
        let expires: u64 = expires.parse().ok().filter(|e| *e >= now_s)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(expires, address).verify_slice(&sig).ok()?;
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        is_file_address(&url).then_some(url)
    }

    /// `body` (a `job/status` answer) with its `fileUrl` pointing at the relay at `base`; the
    /// body as it was when it has none.
    pub(crate) fn rewrite(&self, body: &[u8], base: &str, now_s: u64) -> Option<Vec<u8>> {
        let mut value = json::from_str(std::str::from_utf8(body).ok()?).ok()?;
        let Value::Object(fields) = &mut value else { return None };
        let url = fields.get("fileUrl")?.as_str()?.trim().to_owned();
        if !is_file_address(&url) {
            return None;
        }
        fields.insert("fileUrl".into(), format!("{base}{}", self.path(&url, now_s)).into());
        Some(value.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_out_address_opens_until_it_expires_and_a_forged_one_never() {
        let signer = FileSigner::new(b"secret");
        let path = signer.path("https://files.salesmanago.com/x/1.json?sig=a", 1000);
        let parts: Vec<&str> = path.trim_start_matches("/files/").split('/').collect();
        let (expires, sig, address) = (parts[0], parts[1], parts[2]);
        assert_eq!(
            signer.open(expires, sig, address, 1000).as_deref(),
            Some("https://files.salesmanago.com/x/1.json?sig=a")
        );
        assert_eq!(signer.open(expires, sig, address, 1000 + VALID_S + 1), None, "expired");
        assert_eq!(FileSigner::new(b"other").open(expires, sig, address, 1000), None, "another secret");
        let forged = URL_SAFE_NO_PAD.encode("http://169.254.169.254/latest/meta-data");
        assert_eq!(signer.open(expires, sig, &forged, 1000), None, "another address");
        // Even a signed address must be one the engine would download.
        let inner = signer.path("http://169.254.169.254/", 1000);
        let parts: Vec<&str> = inner.trim_start_matches("/files/").split('/').collect();
        assert_eq!(signer.open(parts[0], parts[1], parts[2], 1000), None);
    }

    #[test]
    fn job_status_answers_point_at_the_relay() {
        let signer = FileSigner::new(b"secret");
        let body = br#"{"success":true,"message":[],"fileUrl":"https://files.salesmanago.com/1.json"}"#;
        let rewritten = String::from_utf8(signer.rewrite(body, "https://relay.example", 5).unwrap()).unwrap();
        assert!(rewritten.contains(r#""fileUrl":"https://relay.example/files/"#), "{rewritten}");
        assert!(!rewritten.contains("files.salesmanago.com"));
        assert_eq!(signer.rewrite(br#"{"success":true,"message":["in progress"]}"#, "https://r", 5), None);
    }
}
