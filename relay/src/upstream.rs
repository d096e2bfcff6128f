//! The relay's calls out, as it trusts them: never a redirect (a `3xx` is a refusal of its
//! own, so a signed body never goes to an address nobody configured), an answer read only up
//! to its cap, and files fetched only from SALESmanago's hosts over `https`, dialled only at
//! public addresses, checked on the address resolved at connect time, so a DNS answer cannot
//! change after the check. Plain `http` and loopback only when the configured endpoint is
//! itself loopback (the sandbox).

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::Url;

use salesmanago_dynamics::core::salesmanago::endpoint::is_loopback;
use salesmanago_dynamics::core::salesmanago::relay::Refusal;
use salesmanago_dynamics::core::salesmanago::Endpoint;

/// The hosts the relay fetches SALESmanago's files from.
#[derive(Debug, Clone)]
pub(crate) struct FileHosts {
    /// The endpoint is a loopback address: the sandbox, whose files are on loopback too.
    loopback: bool,
    /// Domains whose hosts may serve files (each also covers its subdomains).
    domains: Vec<String>,
}

impl FileHosts {
    /// The endpoint's own domain (`app3.salesmanago.pl` → `salesmanago.pl`) and `extra`.
    pub(crate) fn new(endpoint: &Endpoint, extra: &[String]) -> FileHosts {
        let host = Url::parse(endpoint.base()).ok().and_then(|url| url.host().map(|h| h.to_owned()));
        let loopback = host.as_ref().is_some_and(|h| is_loopback(&h.to_string()));
        let mut domains = extra.to_vec();
        if let Some(url::Host::Domain(name)) = host {
            let labels: Vec<&str> = name.split('.').collect();
            let domain = if labels.len() > 2 { labels[1..].join(".") } else { name.clone() };
            domains.push(domain.to_ascii_lowercase());
        }
        FileHosts { loopback, domains }
    }

    /// Whether the relay may fetch `url`; when not, the host it names (for the log).
    pub(crate) fn check(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|_| "an address that cannot be read".to_owned())?;
        let host = parsed.host().map(|h| h.to_owned()).ok_or_else(|| "an address without a host".to_owned())?;
        let loopback = is_loopback(&host.to_string());
        let named = |name: &str| {
            let name = name.to_ascii_lowercase();
            self.domains.iter().any(|d| name == *d || name.ends_with(&format!(".{d}")))
        };
        let fine = match (parsed.scheme(), &host) {
            _ if !parsed.username().is_empty() || parsed.password().is_some() => false,
            ("http" | "https", _) if self.loopback && loopback => true,
            ("https", url::Host::Domain(name)) => !loopback && named(name),
            _ => false,
        };
        match fine {
            true => Ok(parsed),
            false => Err(crate::intake::cut(&host.to_string(), 100)),
        }
    }

    /// Whether addresses are checked when dialled (not in the sandbox).
    fn public_only(&self) -> bool {
        !self.loopback
    }
}

/// An address that is no one's on the internet: loopback, private, link-local, unspecified,
/// shared (CGNAT), multicast, reserved or for documentation, in IPv4 or IPv6 (and IPv4 inside
/// IPv6).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    match segments {
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => public_v4(embedded(high, low)),
        [0x2002, high, low, ..] => public_v4(embedded(high, low)),
        // IPv4-compatible (::a.b.c.d), deprecated.
        [0, 0, 0, 0, 0, 0, _, _] => false,
        [first, second, ..] => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8))
        }
    }
}

/// The resolver of the file client: a name's public addresses only, so the address dialled is
/// the address checked.
struct PublicOnly;

/// A name that resolved to no public address.
#[derive(Debug)]
struct NotPublic;

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host resolves to no public address")
    }
}

impl StdError for NotPublic {}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The refusal a failed call out stands for.
pub(crate) fn failure(error: &reqwest::Error) -> Refusal {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<NotPublic>() {
            return Refusal::FileHost;
        }
        source = cause.source();
    }
    match error.is_timeout() {
        true => Refusal::Timeout,
        false => Refusal::Unreachable,
    }
}

/// The two clients: API calls, and files.
pub(crate) struct Upstream {
    /// SALESmanago's API (and Dataverse): no redirects.
    pub(crate) api: reqwest::Client,
    /// SALESmanago's files: no redirects, no proxy (the address dialled must be the one
    /// checked), public addresses only outside the sandbox, and a bound on each read.
    files: reqwest::Client,
    /// Where files may come from.
    pub(crate) hosts: FileHosts,
}

impl Upstream {
    /// The clients for `config`.
    pub(crate) fn new(config: &crate::Config) -> Upstream {
        let api = reqwest::Client::builder()
            .connect_timeout(config.upstream_timeout)
            .redirect(Policy::none())
            .build()
            .expect("a TLS client with the built-in roots");
        let hosts = FileHosts::new(&config.endpoint, &config.file_hosts);
        let mut files = reqwest::Client::builder()
            .connect_timeout(config.upstream_timeout)
            .read_timeout(config.upstream_timeout * 2)
            .redirect(Policy::none())
            .no_proxy();
        if hosts.public_only() {
            files = files.dns_resolver(Arc::new(PublicOnly));
        }
        let files = files.build().expect("a TLS client with the built-in roots");
        Upstream { api, files, hosts }
    }

    /// Starts the download of `url` (checked by [`FileHosts::check`]) within `total`: its status
    /// and length, and its body as it comes, cut with an error past `cap` bytes.
    pub(crate) async fn file(
        &self,
        url: Url,
        total: Duration,
        cap: u64,
    ) -> Result<(u16, Option<u64>, impl Stream<Item = std::io::Result<Bytes>>), Refusal> {
        let response = self.files.get(url).timeout(total).send().await.map_err(|e| failure(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Refusal::Redirect);
        }
        let length = response.content_length();
        if length.is_some_and(|n| n > cap) {
            return Err(Refusal::AnswerTooLarge);
        }
        let mut seen = 0u64;
        let body = response.bytes_stream().map(move |part| {
            let part = part.map_err(std::io::Error::other)?;
            seen += part.len() as u64;
            match seen > cap {
                true => Err(std::io::Error::other("the file is larger than RELAY_MAX_FILE_BYTES")),
                false => Ok(part),
            }
        });
        Ok((status.as_u16(), length, body))
    }
}

/// The body of `response`, at most `cap` bytes: [`Refusal::AnswerTooLarge`] past it, whatever
/// the answer says of its length.
pub(crate) async fn capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, Refusal> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Refusal::AnswerTooLarge);
    }
    let mut body = Vec::new();
    while let Some(part) = response.chunk().await.map_err(|e| failure(&e))? {
        if body.len() + part.len() > cap {
            return Err(Refusal::AnswerTooLarge);
        }
        body.extend_from_slice(&part);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_only_from_salesmanagos_hosts_over_https() {
        let hosts = FileHosts::new(&Endpoint::parse("app3.salesmanago.pl").unwrap(), &["cdn.example.net".into()]);
        for fine in [
            "https://app3.salesmanago.pl/files/1.json",
            "https://files.salesmanago.pl/x?sig=1",
            "https://salesmanago.pl/1.json",
            "https://eu.cdn.example.net/1.json",
        ] {
            assert!(hosts.check(fine).is_ok(), "{fine}");
        }
        for (refused, host) in [
            ("http://files.salesmanago.pl/1.json", "files.salesmanago.pl"),
            ("https://salesmanago.pl.evil.example/1.json", "salesmanago.pl.evil.example"),
            ("https://evilsalesmanago.pl/1.json", "evilsalesmanago.pl"),
            ("https://127.0.0.1/1.json", "127.0.0.1"),
            ("http://localhost:4781/1.json", "localhost"),
            ("https://169.254.169.254/latest", "169.254.169.254"),
            ("https://[::1]/x", "[::1]"),
            ("https://user:pw@files.salesmanago.pl/1.json", "files.salesmanago.pl"),
        ] {
            assert_eq!(hosts.check(refused).map(|_| ()), Err(host.to_owned()), "{refused}");
        }
        assert!(hosts.public_only());
    }

    #[test]
    fn a_loopback_endpoint_takes_loopback_files_the_sandbox() {
        let hosts = FileHosts::new(&Endpoint::parse("http://127.0.0.1:4781").unwrap(), &[]);
        assert!(hosts.check("http://127.0.0.1:4781/files/1.json").is_ok());
        assert!(hosts.check("http://localhost:9/x").is_ok());
        assert!(hosts.check("http://10.0.0.1/x").is_err());
        assert!(!hosts.public_only());
    }

    #[test]
    fn only_addresses_someone_owns_on_the_internet_are_public() {
        for public in ["8.8.8.8", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }
}
