//! The files SALESmanago hands out (an export's `fileUrl`), reached through the relay: the
//! relay rewrites each address in a `job/status` answer into one of its own, signed with a key
//! derived from the API secret and valid for a day, so the browser never needs SALESmanago's
//! file host, and the relay fetches only addresses it handed out itself, on SALESmanago's hosts
//! ([`crate::upstream::FileHosts`]). Any instance with the same secret can serve them: nothing
//! is stored. Without `RELAY_PUBLIC_URL` the address is a path under the relay
//! ([`relay::FILE_PATH`]), which the engine puts under the endpoint it called: the relay never
//! builds an address from what a caller says its host is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_dynamics::core::salesmanago::relay;

use crate::upstream::FileHosts;

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

    /// The path under the relay for `url` (`files/…`, without a leading `/`), valid until
    /// `now_s + 1 day`.
    pub(crate) fn path(&self, url: &str, now_s: u64) -> String {
        let expires = now_s + VALID_S;
        let address = URL_SAFE_NO_PAD.encode(url);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(expires, &address).finalize().into_bytes());
        format!("{}{expires}/{sig}/{address}", relay::FILE_PATH)
    }

    /// The SALESmanago address a path of [`FileSigner::path`] stands for, when its signature
    /// holds and it has not expired (whether it may be fetched is [`FileHosts::check`]'s).
    pub(crate) fn open(&self, expires: &str, sig: &str, address: &str, now_s: u64) -> Option<String> {
        let expires: u64 = expires.parse().ok().filter(|e| *e >= now_s)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(expires, address).verify_slice(&sig).ok()?;
        String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()
    }

    /// `body` (a `job/status` answer) with its `fileUrl` pointing at the relay: at `base`
    /// (`RELAY_PUBLIC_URL`), or as a path under the relay when there is none.
    pub(crate) fn rewrite(&self, body: &[u8], base: Option<&str>, now_s: u64, hosts: &FileHosts) -> Rewritten {
        let Some(mut value) = std::str::from_utf8(body).ok().and_then(|text| json::from_str(text).ok()) else {
            return Rewritten::Unchanged;
        };
        let Value::Object(fields) = &mut value else { return Rewritten::Unchanged };
        let Some(url) = fields.get("fileUrl").and_then(Value::as_str).map(|u| u.trim().to_owned()) else {
            return Rewritten::Unchanged;
        };
        if url.is_empty() {
            return Rewritten::Unchanged;
        }
        if let Err(host) = hosts.check(&url) {
            return Rewritten::Refused(host);
        }
        let path = self.path(&url, now_s);
        let address = match base {
            Some(base) => format!("{base}/{path}"),
            None => path,
        };
        fields.insert("fileUrl".into(), address.into());
        Rewritten::To(value.to_string().into_bytes())
    }
}

/// What became of a `job/status` answer.
pub(crate) enum Rewritten {
    /// It names no file.
    Unchanged,
    /// Its file, under the relay.
    To(Vec<u8>),
    /// Its file is on this host, which the relay does not fetch from.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_out_address_opens_until_it_expires_and_a_forged_one_never() {
        let signer = FileSigner::new(b"secret");
        let path = signer.path("https://files.salesmanago.com/x/1.json?sig=a", 1000);
        assert!(relay::is_file_path(&path), "{path}");
        let parts: Vec<&str> = path.trim_start_matches("files/").split('/').collect();
        let (expires, sig, address) = (parts[0], parts[1], parts[2]);
        assert_eq!(
            signer.open(expires, sig, address, 1000).as_deref(),
            Some("https://files.salesmanago.com/x/1.json?sig=a")
        );
        assert_eq!(signer.open(expires, sig, address, 1000 + VALID_S + 1), None, "expired");
        assert_eq!(FileSigner::new(b"other").open(expires, sig, address, 1000), None, "another secret");
        let forged = URL_SAFE_NO_PAD.encode("http://169.254.169.254/latest/meta-data");
        assert_eq!(signer.open(expires, sig, &forged, 1000), None, "another address");
    }

    #[test]
    fn job_status_answers_point_at_the_relay() {
        use salesmanago_dynamics::core::salesmanago::Endpoint;
        let signer = FileSigner::new(b"secret");
        let hosts = FileHosts::new(&Endpoint::parse("www.salesmanago.com").unwrap(), &[]);
        let body = br#"{"success":true,"message":[],"fileUrl":"https://files.salesmanago.com/1.json"}"#;
        let text = |rewritten| match rewritten {
            Rewritten::To(bytes) => String::from_utf8(bytes).unwrap(),
            Rewritten::Unchanged => "unchanged".into(),
            Rewritten::Refused(host) => format!("refused {host}"),
        };
        let rewritten = text(signer.rewrite(body, Some("https://relay.example"), 5, &hosts));
        assert!(rewritten.contains(r#""fileUrl":"https://relay.example/files/"#), "{rewritten}");
        assert!(!rewritten.contains("files.salesmanago.com"));
        let relative = text(signer.rewrite(body, None, 5, &hosts));
        assert!(relative.contains(r#""fileUrl":"files/"#), "no public address: a path under the relay, {relative}");
        let progress = br#"{"success":true,"message":["in progress"]}"#;
        assert_eq!(text(signer.rewrite(progress, None, 5, &hosts)), "unchanged");
        let elsewhere = br#"{"success":true,"message":[],"fileUrl":"https://evil.example/1.json"}"#;
        assert_eq!(text(signer.rewrite(elsewhere, None, 5, &hosts)), "refused evil.example");
    }
}
