//! The relay's settings, from environment variables (or files beside them, for container
//! secrets): each missing or bad value is named, with what to put there instead.

use std::net::SocketAddr;
use std::time::Duration;

use salesmanago_dynamics::core::salesmanago::endpoint::is_file_address;
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Credentials, Endpoint};

use salesmanago_dynamics::core::dataverse::registration;

use crate::dataverse::DataverseConfig;
use crate::keys::StoredKey;

/// Everything the relay runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The SALESmanago account the relay calls for.
    pub credentials: Credentials,
    /// The SALESmanago server (`https://app3.salesmanago.pl`).
    pub endpoint: Endpoint,
    /// The Dynamics origins allowed to call (exact match, such as `https://org.crm4.dynamics.com`).
    pub origins: Vec<String>,
    /// The relay keys accepted, as stored (id and hash).
    pub keys: Vec<StoredKey>,
    /// The largest request body taken.
    pub max_body: usize,
    /// How long SALESmanago may take to answer.
    pub upstream_timeout: Duration,
    /// Calls to SALESmanago under way at once, at most, split evenly among the relay keys
    /// (`RELAY_MAX_CONCURRENT`).
    pub max_concurrent: usize,
    /// Requests a second per key, on average (twice that in a burst).
    pub rate_per_key: u32,
    /// Connections open at once, at most (`RELAY_MAX_CONNECTIONS`; by default three quarters
    /// of the process's file descriptors, see [`Config::connection_cap`]).
    pub max_connections: Option<usize>,
    /// How long a connection may take to send a request's headers, counted from when it opens
    /// or from the end of its last answer, so it is also the idle keep-alive timeout
    /// (`RELAY_HEADER_TIMEOUT_MS`).
    pub header_timeout: Duration,
    /// How long a request's whole body may take to arrive (`RELAY_BODY_TIMEOUT_MS`).
    pub body_timeout: Duration,
    /// How long an answer may wait for the caller to read it (`RELAY_WRITE_TIMEOUT_MS`).
    pub write_timeout: Duration,
    /// The largest SALESmanago API answer taken (`RELAY_MAX_ANSWER_BYTES`).
    pub max_answer: usize,
    /// The largest file passed through (`RELAY_MAX_FILE_BYTES`).
    pub max_file: u64,
    /// Threads serving requests (`RELAY_WORKER_THREADS`, 1 by default: one thread serves
    /// thousands of calls a second, and fewer threads wake each other less).
    pub worker_threads: usize,
    /// Hosts the relay fetches SALESmanago's files from besides the endpoint's own domain
    /// (`RELAY_FILE_HOSTS`; each one also covers its subdomains).
    pub file_hosts: Vec<String>,
    /// The relay's address as browsers reach it, for the file addresses it hands out; when
    /// unset, it hands out paths under itself, which the engine puts under its endpoint.
    pub public_url: Option<String>,
    /// The keys Dataverse's webhook may show (none: the webhook is off).
    pub webhook_keys: Vec<StoredKey>,
    /// The keys SALESmanago's rules show as HTTP Basic credentials, the key's id as the user
    /// and its secret as the password (`RELAY_RULE_KEYS`; none: the rule endpoint is off).
    pub rule_keys: Vec<StoredKey>,
    /// The application user the integration writes back as: its changes never travel back.
    pub app_user: Option<String>,
    /// How often the catch-up runs (with Dataverse access); zero: never on its own.
    pub catch_up: Duration,
    /// How often Pull activity runs (with Dataverse access, `RELAY_ACTIVITY_MINUTES`); zero:
    /// never on its own.
    pub activity: Duration,
    /// How long webhook deliveries gather into one batch upsert (`RELAY_BURST_MS`), at most.
    pub burst: Duration,
    /// A webhook delivery is answered within this (`RELAY_ANSWER_WITHIN_MS`, 50 s: Dataverse
    /// waits 60), with 503 if its contact has not gone by then.
    pub answer_within: Duration,
    /// How the relay reaches Dataverse itself (reading contacts back, writing their status):
    /// `DATAVERSE_URL` with an app registration; none when not set.
    pub dataverse: Option<DataverseConfig>,
}

/// A setting that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the settings from `var` (the process environment in `main`).
    ///
    /// Fails naming the first setting that is missing or wrong.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let read = |name: &str| setting(&var, name);
        let required = |name: &str, what: &str| required(&var, name, what);
        let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, ConfigError> {
            match read(name)? {
                None => Ok(default),
                Some(text) => whole(name, &text, range),
            }
        };
        let millis = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
            number(name, default, range).map(Duration::from_millis)
        };
        let credentials = Credentials {
            client_id: required("SALESMANAGO_CLIENT_ID", "the client id of Integration Center → API")?,
            api_secret: ApiSecret::new(required(
                "SALESMANAGO_API_SECRET",
                "the API secret of Integration Center → API",
            )?),
            owner: required("SALESMANAGO_OWNER", "the e-mail of the SALESmanago user who owns the contacts")?
                .to_ascii_lowercase(),
        };
        let endpoint_text = required("SALESMANAGO_ENDPOINT", "your SALESmanago server, such as app3.salesmanago.pl")?;
        let endpoint = Endpoint::parse(&endpoint_text)
            .map_err(|e| ConfigError(format!("SALESMANAGO_ENDPOINT {:?} is not usable: {e:?}", cut(&endpoint_text))))?;
        let origins = required(
            "RELAY_ALLOWED_ORIGINS",
            "the Dynamics addresses allowed, comma-separated, such as https://contoso.crm4.dynamics.com",
        )?
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|o| !o.is_empty())
        .map(|o| {
            // An origin has no path; plain http only to a real loopback host, as for the endpoint.
            let bare = o.split_once("://").is_some_and(|(_, rest)| !rest.contains(['/', '?', '#']));
            if bare && is_file_address(&o) {
                Ok(o)
            } else {
                Err(ConfigError(format!("RELAY_ALLOWED_ORIGINS: {:?} is not an https:// origin", cut(&o))))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
        let keys = required(
            "RELAY_KEYS",
            "the relay keys' stored forms, comma-separated (salesmanago-relay new-key prints one)",
        )?;
        let keys = stored_keys("RELAY_KEYS", &keys)?;
        // Azure Functions' custom handlers are told their port; elsewhere RELAY_LISTEN.
        let listen = match (var("FUNCTIONS_CUSTOMHANDLER_PORT"), read("RELAY_LISTEN")?) {
            (Some(port), _) => format!("127.0.0.1:{}", port.trim()),
            (None, Some(listen)) => listen,
            (None, None) => "127.0.0.1:8080".into(),
        };
        let listen = listen.parse().map_err(|_| {
            ConfigError(format!(
                "RELAY_LISTEN must be an address and port such as 0.0.0.0:8080, not {:?}",
                cut(&listen)
            ))
        })?;
        Ok(Config {
            listen,
            credentials,
            endpoint,
            origins,
            keys,
            max_body: number("RELAY_MAX_BODY_BYTES", 4 * MIB, 1024..=64 * MIB)? as usize,
            upstream_timeout: millis("RELAY_UPSTREAM_TIMEOUT_MS", 30_000, 100..=600_000)?,
            burst: millis("RELAY_BURST_MS", 100, 1..=10_000)?,
            // Dataverse waits 60 s for an answer.
            answer_within: millis("RELAY_ANSWER_WITHIN_MS", 50_000, 100..=59_000)?,
            max_concurrent: number("RELAY_MAX_CONCURRENT", 64, 1..=100_000)? as usize,
            rate_per_key: number("RELAY_RATE_PER_KEY", 20, 1..=100_000)? as u32,
            max_connections: match read("RELAY_MAX_CONNECTIONS")? {
                None => None,
                Some(text) => Some(whole("RELAY_MAX_CONNECTIONS", &text, 16..=1_000_000)? as usize),
            },
            worker_threads: number("RELAY_WORKER_THREADS", 1, 1..=256)? as usize,
            header_timeout: millis("RELAY_HEADER_TIMEOUT_MS", 10_000, 100..=600_000)?,
            body_timeout: millis("RELAY_BODY_TIMEOUT_MS", 30_000, 100..=600_000)?,
            write_timeout: millis("RELAY_WRITE_TIMEOUT_MS", 30_000, 100..=600_000)?,
            max_answer: number("RELAY_MAX_ANSWER_BYTES", 8 * MIB, 64 * 1024..=1024 * MIB)? as usize,
            max_file: number("RELAY_MAX_FILE_BYTES", 1024 * MIB, MIB..=64 * 1024 * MIB)?,
            file_hosts: read("RELAY_FILE_HOSTS")?
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .map(|h| match is_file_address(&format!("https://{h}/")) && !h.contains([':', '/', '[']) {
                    true => Ok(h),
                    false => Err(ConfigError(format!("RELAY_FILE_HOSTS: {:?} is not a host name", cut(&h)))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            public_url: match read("RELAY_PUBLIC_URL")? {
                None => None,
                Some(url) if is_file_address(&url) && !url.contains(['?', '#']) => {
                    Some(url.trim_end_matches('/').to_owned())
                }
                Some(url) => {
                    return Err(ConfigError(format!(
                        "RELAY_PUBLIC_URL: {:?} is not an https:// address (plain http only to a loopback host)",
                        cut(&url)
                    )))
                }
            },
            webhook_keys: stored_keys("RELAY_WEBHOOK_KEYS", &read("RELAY_WEBHOOK_KEYS")?.unwrap_or_default())?,
            rule_keys: stored_keys("RELAY_RULE_KEYS", &read("RELAY_RULE_KEYS")?.unwrap_or_default())?,
            app_user: read("RELAY_APP_USER")?,
            dataverse: dataverse(&var)?,
            // Minutes, 0 for off; at most a week.
            catch_up: Duration::from_secs(60 * number("RELAY_CATCH_UP_MINUTES", 15, 0..=7 * 24 * 60)?),
            activity: Duration::from_secs(60 * number("RELAY_ACTIVITY_MINUTES", 60, 0..=7 * 24 * 60)?),
        })
    }
}

const MIB: u64 = 1024 * 1024;

/// `text` of setting `name` as a whole number in `range`. The message shows the value only
/// when it is a short number, so a secret pasted into the wrong setting is never printed.
fn whole(name: &str, text: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    let (low, high) = (range.start(), range.end());
    let shown = match text.len() <= 24 && text.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') {
        true => format!("not {text}"),
        false => "not that value (not shown)".to_owned(),
    };
    match text.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError(format!("{name} must be a whole number from {low} to {high}, {shown}"))),
    }
}

/// `text` cut for a message: a setting that is not secret, but may be long.
fn cut(text: &str) -> String {
    crate::intake::cut(text, 80)
}

/// The stored keys of setting `name` (comma-separated `<id>:<sha-256 hex>`). A wrong entry is
/// named by its place, never shown: it may be a key itself, pasted where its stored form goes.
fn stored_keys(name: &str, text: &str) -> Result<Vec<StoredKey>, ConfigError> {
    let entries = text.split(',').map(str::trim).filter(|k| !k.is_empty());
    entries
        .enumerate()
        .map(|(i, entry)| {
            StoredKey::parse(entry).map_err(|_| {
                let hint = match entry.split_once('.') {
                    Some(_) if !entry.contains(':') => {
                        " It looks like a relay key itself: put the stored form that `salesmanago-relay new-key` prints (<id>:<64 hex digits>), never the key"
                    }
                    _ => "",
                };
                ConfigError(format!(
                    "{name}: entry {} is not a stored key (<id>:<64 hex digits>, the id 1 to 32 letters, digits, - or _).{hint}",
                    i + 1
                ))
            })
        })
        .collect()
}

/// Descriptors a relay keeps for itself besides its callers' connections: its own calls to
/// SALESmanago and Dataverse, its listener, its runtime.
const OWN_DESCRIPTORS: u64 = 128;

impl Config {
    /// The cap on open connections for a process allowed `descriptors` open files (its soft
    /// `RLIMIT_NOFILE`, when known): `RELAY_MAX_CONNECTIONS`, which must leave the relay
    /// descriptors of its own, or by default three quarters of them.
    ///
    /// Fails naming `RELAY_MAX_CONNECTIONS` and the limit when it does not fit.
    pub fn connection_cap(&self, descriptors: Option<u64>) -> Result<usize, ConfigError> {
        let room = descriptors.map(|d| d.saturating_sub(OWN_DESCRIPTORS));
        match (self.max_connections, room) {
            (Some(cap), Some(room)) if cap as u64 > room => Err(ConfigError(format!(
                "RELAY_MAX_CONNECTIONS is {cap}, but the process may open {} files and the relay keeps {OWN_DESCRIPTORS} for itself: lower it to {room} or less, or raise the limit (LimitNOFILE= in the systemd unit, ulimit -n)",
                descriptors.unwrap_or_default()
            ))),
            (Some(cap), _) => Ok(cap),
            (None, Some(room)) if room < 16 => Err(ConfigError(format!(
                "the process may open only {} files: raise the limit (LimitNOFILE= in the systemd unit, ulimit -n)",
                descriptors.unwrap_or_default()
            ))),
            (None, Some(room)) => Ok((descriptors.unwrap_or_default() / 4 * 3).min(room).min(1_000_000) as usize),
            (None, None) => Ok(1024),
        }
    }
}

/// `NAME`, or the contents of the file `NAME_FILE` names.
fn setting(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<String>, ConfigError> {
    if let Some(value) = var(name).filter(|v| !v.trim().is_empty()) {
        return Ok(Some(value.trim().to_owned()));
    }
    match var(&format!("{name}_FILE")).filter(|v| !v.trim().is_empty()) {
        Some(path) => std::fs::read_to_string(path.trim())
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|e| ConfigError(format!("{name}_FILE: cannot read {}: {e}", path.trim()))),
        None => Ok(None),
    }
}

fn required(var: &impl Fn(&str) -> Option<String>, name: &str, what: &str) -> Result<String, ConfigError> {
    setting(var, name)?
        .ok_or_else(|| ConfigError(format!("{name} is not set: {what} (or {name}_FILE, a file holding it)")))
}

/// Dataverse access (`DATAVERSE_URL` and an app registration), when `DATAVERSE_URL` is set.
fn dataverse(var: &impl Fn(&str) -> Option<String>) -> Result<Option<DataverseConfig>, ConfigError> {
    let Some(url) = setting(var, "DATAVERSE_URL")? else { return Ok(None) };
    let token_url =
        match (setting(var, "DATAVERSE_TOKEN_URL")?, setting(var, "DATAVERSE_TENANT_ID")?) {
            (Some(token_url), _) => token_url,
            (None, Some(tenant)) => format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            (None, None) => return Err(ConfigError(
                "DATAVERSE_TENANT_ID is not set: the Entra ID tenant of the app registration (or DATAVERSE_TOKEN_URL)"
                    .into(),
            )),
        };
    Ok(Some(DataverseConfig {
        url: url.trim_end_matches('/').to_owned(),
        token_url,
        client_id: required(var, "DATAVERSE_CLIENT_ID", "the app registration's client id")?,
        client_secret: required(var, "DATAVERSE_CLIENT_SECRET", "the app registration's client secret")?,
    }))
}

/// What `salesmanago-relay register` needs: Dataverse access, the webhook's public address and
/// the webhook key in plain (which `RELAY_WEBHOOK_KEYS`, when set, must accept).
#[derive(Debug, Clone)]
pub struct Registration {
    /// How to reach Dataverse.
    pub dataverse: DataverseConfig,
    /// The webhook's address as Dataverse reaches it.
    pub url: String,
    /// The webhook key Dataverse will show.
    pub key: String,
}

impl Registration {
    /// Reads what `register` (`with_key`) or `unregister` needs from `var`.
    ///
    /// Fails naming the first setting that is missing or wrong.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, with_key: bool) -> Result<Registration, ConfigError> {
        let dataverse = dataverse(&var)?.ok_or_else(|| {
            ConfigError("DATAVERSE_URL is not set: the org's address, such as https://contoso.crm4.dynamics.com".into())
        })?;
        if !with_key {
            return Ok(Registration { dataverse, url: String::new(), key: String::new() });
        }
        let public = required(&var, "RELAY_PUBLIC_URL", "the relay's https address as Dataverse reaches it")?;
        let url = format!("{}{}", public.trim_end_matches('/'), registration::WEBHOOK_PATH);
        if !is_file_address(&url) {
            return Err(ConfigError(format!("RELAY_PUBLIC_URL: {:?} is not an https:// address", cut(&public))));
        }
        let key = required(&var, "RELAY_WEBHOOK_KEY", "the webhook key (salesmanago-relay new-key prints one)")?;
        let stored = setting(&var, "RELAY_WEBHOOK_KEYS")?.unwrap_or_default();
        let stored = stored_keys("RELAY_WEBHOOK_KEYS", &stored)?;
        if !stored.is_empty() && crate::keys::verify(&stored, &key).is_none() {
            return Err(ConfigError(
                "RELAY_WEBHOOK_KEY is not one of RELAY_WEBHOOK_KEYS: the relay would refuse every delivery".into(),
            ));
        }
        Ok(Registration { dataverse, url, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    const KEY: &str = "k1:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_complete_environment_reads_and_each_gap_is_named() {
        let all = [
            ("SALESMANAGO_CLIENT_ID", "cid"),
            ("SALESMANAGO_API_SECRET", "secret"),
            ("SALESMANAGO_OWNER", "Owner@Example.com"),
            ("SALESMANAGO_ENDPOINT", "app3.salesmanago.pl"),
            ("RELAY_ALLOWED_ORIGINS", "https://contoso.crm4.dynamics.com/, https://b.crm.dynamics.com"),
            ("RELAY_KEYS", KEY),
        ];
        let config = Config::from_vars(vars(&all)).unwrap();
        assert_eq!(config.origins, ["https://contoso.crm4.dynamics.com", "https://b.crm.dynamics.com"]);
        assert_eq!(config.credentials.owner, "owner@example.com");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        for missing in 0..all.len() {
            let some: Vec<_> = all.iter().enumerate().filter(|(i, _)| *i != missing).map(|(_, p)| *p).collect();
            let error = Config::from_vars(vars(&some)).unwrap_err();
            assert!(error.0.starts_with(all[missing].0), "{error}");
        }
        let mut functions = all.to_vec();
        functions.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"));
        assert_eq!(Config::from_vars(vars(&functions)).unwrap().listen.to_string(), "127.0.0.1:7071");
        let mut bad = all.to_vec();
        bad.push(("RELAY_RATE_PER_KEY", "fast"));
        assert!(Config::from_vars(vars(&bad)).unwrap_err().0.contains("RELAY_RATE_PER_KEY"));
        let mut plain = all.to_vec();
        for bad in ["http://contoso.example", "http://127.0.0.1.nip.io", "https://contoso.example/path"] {
            plain[4] = ("RELAY_ALLOWED_ORIGINS", bad);
            assert!(Config::from_vars(vars(&plain)).unwrap_err().0.contains("not an https:// origin"), "{bad}");
        }
        plain[4] = ("RELAY_ALLOWED_ORIGINS", "http://127.0.0.1:4000");
        assert!(Config::from_vars(vars(&plain)).is_ok(), "a developer's loopback origin");
    }
}
