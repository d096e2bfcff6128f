//! Where the API lives: the `new_endpoint` column, validated once.
//!
//! Accepted forms (`docs/salesmanago-api.md` §1):
//! - a SALESmanago host, such as `app3.salesmanago.pl` or `www.salesmanago.com`, optionally with
//!   `https://` and a trailing `/api`;
//! - an `https://` URL with an optional path prefix: a relay that forwards `<prefix>/api/...`;
//! - `http://` only for a loopback host (a developer's relay or the local simulator).
//!
//! Anything else is refused with an [`EndpointError`] that says what to enter instead.

use crate::prelude::*;

/// A validated API base, such as `https://app3.salesmanago.pl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
}

/// Why an endpoint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointError {
    /// Nothing was entered.
    Missing,
    /// A bare host that is not a SALESmanago server: a relay needs its full `https://` URL.
    NotSalesmanagoHost,
    /// A scheme other than `https` (or `http` to a loopback host).
    InsecureScheme,
    /// User name or password in the URL, which would leak into logs.
    CredentialsInUrl,
    /// A query string or fragment, which the API does not take.
    QueryOrFragment,
    /// The host part is not a valid host name.
    InvalidHost,
}

const SALESMANAGO_DOMAINS: [&str; 2] = [".salesmanago.pl", ".salesmanago.com"];

impl Endpoint {
    /// Validates what the admin entered.
    ///
    /// Fails with an [`EndpointError`] naming the problem.
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(EndpointError::Missing);
        }
        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, input),
        };
        if rest.contains(['?', '#']) {
            return Err(EndpointError::QueryOrFragment);
        }
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.contains('@') {
            return Err(EndpointError::CredentialsInUrl);
        }
        let authority = authority.to_ascii_lowercase();
        let (host, port) = split_port(&authority)?;
        if !valid_host(host) {
            return Err(EndpointError::InvalidHost);
        }
        let salesmanago = SALESMANAGO_DOMAINS.iter().any(|d| host.ends_with(d));
        match scheme.as_deref() {
            None if !salesmanago || port.is_some() => return Err(EndpointError::NotSalesmanagoHost),
            None | Some("https") => {}
            Some("http") if is_loopback(host) => {}
            Some(_) => return Err(EndpointError::InsecureScheme),
        }
        let scheme = scheme.unwrap_or_else(|| "https".into());
        let mut prefix = path.trim_end_matches('/').to_owned();
        // `https://app3.salesmanago.pl/api` names the API root itself.
        if prefix == "api" || prefix.ends_with("/api") {
            prefix.truncate(prefix.len() - 3);
            prefix = prefix.trim_end_matches('/').to_owned();
        }
        let mut base = format!("{scheme}://{authority}");
        if !prefix.is_empty() {
            base.push('/');
            base.push_str(&prefix);
        }
        Ok(Endpoint { base })
    }

    /// The URL of API method `method` (such as `contact/upsert`).
    pub fn url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base)
    }

    /// The base, as normalised (no trailing slash, no `/api`).
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// Whether the engine may download `url`, an address SALESmanago handed out (an export's
/// `fileUrl`): `https://` to a valid host, or `http://` to a loopback host, with no user name or
/// password in it. Nothing is sent with the download but the GET itself.
pub fn is_file_address(url: &str) -> bool {
    let Some((scheme, rest)) = url.trim().split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    if authority.contains('@') {
        return false;
    }
    let Ok((host, _)) = split_port(&authority) else { return false };
    valid_host(host)
        && match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => is_loopback(host),
            _ => false,
        }
}

fn split_port(authority: &str) -> Result<(&str, Option<&str>), EndpointError> {
    if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        let (inside, after) = rest.split_once(']').ok_or(EndpointError::InvalidHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(EndpointError::InvalidHost)?),
        };
        check_port(port)?;
        let host = &authority[..inside.len() + 2];
        return Ok((host, port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    check_port(port)?;
    Ok((host, port))
}

fn check_port(port: Option<&str>) -> Result<(), EndpointError> {
    match port {
        Some(p) if p.parse::<u16>().map_or(true, |n| n == 0) => Err(EndpointError::InvalidHost),
        _ => Ok(()),
    }
}

fn valid_host(host: &str) -> bool {
    if host == "[::1]" {
        return true;
    }
    !host.is_empty() && host.len() <= 253 && host.split('.').all(is_dns_label)
}

/// One dot-separated part of a host name: 1–63 letters, digits or inner hyphens (RFC 1123).
/// E-mail domains are checked with it too.
pub(crate) fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `localhost`, `[::1]` or an IPv4 address in 127.0.0.0/8; not a name that only starts like
/// one (`127.attacker.example`).
pub fn is_loopback(host: &str) -> bool {
    let octets: Vec<&str> = host.split('.').collect();
    let octet = |part: &&str| !part.is_empty() && part.len() <= 3 && part.parse::<u8>().is_ok();
    host == "localhost" || host == "[::1]" || (octets.len() == 4 && octets[0] == "127" && octets.iter().all(octet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(input: &str) -> String {
        Endpoint::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e:?}")).base().to_owned()
    }

    #[test]
    fn salesmanago_hosts_become_https_bases() {
        assert_eq!(base("app3.salesmanago.pl"), "https://app3.salesmanago.pl");
        assert_eq!(base("  APP2.SalesManago.PL/ "), "https://app2.salesmanago.pl");
        assert_eq!(base("www.salesmanago.com/api"), "https://www.salesmanago.com");
        assert_eq!(base("https://app3.salesmanago.pl/api/"), "https://app3.salesmanago.pl");
    }

    #[test]
    fn relays_keep_their_path_prefix() {
        assert_eq!(base("https://relay.example.com/salesmanago/"), "https://relay.example.com/salesmanago");
        assert_eq!(base("https://relay.example.com:8443/a/b/api"), "https://relay.example.com:8443/a/b");
        assert_eq!(base("HTTPS://Relay.Example.com"), "https://relay.example.com");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert_eq!(base("http://127.0.0.1:41234"), "http://127.0.0.1:41234");
        assert_eq!(base("http://localhost:8080/relay"), "http://localhost:8080/relay");
        assert_eq!(base("http://[::1]:9000"), "http://[::1]:9000");
        assert_eq!(Endpoint::parse("http://app3.salesmanago.pl"), Err(EndpointError::InsecureScheme));
        assert_eq!(Endpoint::parse("ftp://relay.example.com"), Err(EndpointError::InsecureScheme));
        // Names that only look like loopback are other hosts.
        assert_eq!(Endpoint::parse("http://127.attacker.example:4901"), Err(EndpointError::InsecureScheme));
        assert_eq!(Endpoint::parse("http://127.0.0.1.nip.io"), Err(EndpointError::InsecureScheme));
        assert_eq!(base("http://127.1.2.3"), "http://127.1.2.3");
    }

    #[test]
    fn files_are_downloaded_over_https_or_from_loopback() {
        assert!(is_file_address("https://files.salesmanago.com/export/1.json?sig=x"));
        assert!(is_file_address("http://127.0.0.1:4901/files/1.json"));
        assert!(!is_file_address("http://files.salesmanago.com/1.json"));
        assert!(!is_file_address("http://127.attacker.example/1.json"));
        assert!(!is_file_address("https://user:pw@files.example/1.json"));
        assert!(!is_file_address("javascript:alert(1)"));
        assert!(!is_file_address("file:///etc/passwd"));
    }

    #[test]
    fn urls_name_the_method_under_api() {
        let endpoint = Endpoint::parse("https://relay.example.com/sm").expect("valid");
        assert_eq!(endpoint.url("contact/upsert"), "https://relay.example.com/sm/api/contact/upsert");
    }

    #[test]
    fn bad_endpoints_are_refused_with_their_reason() {
        let cases = [
            ("", EndpointError::Missing),
            ("   ", EndpointError::Missing),
            ("relay.example.com", EndpointError::NotSalesmanagoHost),
            ("app3.salesmanago.pl:8443", EndpointError::NotSalesmanagoHost),
            ("https://user:pw@relay.example.com", EndpointError::CredentialsInUrl),
            ("https://relay.example.com/api?key=1", EndpointError::QueryOrFragment),
            ("https://relay.example.com/#x", EndpointError::QueryOrFragment),
            ("https://bad_host.example.com", EndpointError::InvalidHost),
            ("https://-x.example.com", EndpointError::InvalidHost),
            ("https://relay.example.com:99999", EndpointError::InvalidHost),
            ("https://", EndpointError::InvalidHost),
            ("app3 .salesmanago.pl", EndpointError::InvalidHost),
            ("javascript:alert(1)", EndpointError::InvalidHost),
        ];
        for (input, expected) in cases {
            assert_eq!(Endpoint::parse(input), Err(expected), "{input:?}");
        }
    }
}
