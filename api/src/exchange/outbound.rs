//! Where the hub's own HTTP requests may go — webhook deliveries, pulls, OAuth token endpoints: addresses of the
//! public internet, and the networks the operator names (`CNH_OUTBOUND_ALLOWED_NETWORKS`; in development the local
//! machine too).
//!
//! Why: those URLs are registered through the API by institutions' accounts and fetched from inside the hub's
//! network. Without this rule, such an account could make the hub reach the cloud's metadata endpoint
//! (169.254.169.254), a database on 10.x or a service of the hub's own machine, and read or probe it (server-side
//! request forgery). A URL naming an address is checked when registered and before each request; a name is checked
//! each time it is resolved (`GuardedResolver`), so that a name re-pointed to an internal address afterwards is
//! refused too. Redirects are not followed by either client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

/// A network: an address and the length of its prefix (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = (usize::from(prefix / 8), prefix % 8);
    a[..bytes] == b[..bytes] && (bits == 0 || (a[bytes] ^ b[bytes]) >> (8 - bits) == 0)
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("« {text} » n'est pas une adresse ni un réseau IP"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("« {text} » : longueur de préfixe invalide (0 à {max})"))?,
        };
        Ok(Network { addr, prefix })
    }
}

/// The special-purpose ranges (IANA's registries): private, shared, loopback, link-local, documentation,
/// benchmarking, multicast, reserved. Nothing there is the public internet.
static NOT_GLOBAL: LazyLock<Vec<Network>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ]
    .iter()
    .map(|n| n.parse().expect("static network"))
    .collect()
});

/// The address a packet would really reach: an IPv4 address written as IPv6 (`::ffff:10.0.0.1`, or behind the
/// NAT64 prefix `64:ff9b::/96`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
                let o = v6.octets();
                IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            }
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The destinations allowed: the public internet and `allowed`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    allowed: Vec<Network>,
}

/// A refused destination, in the words given to the institution or recorded on the delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "« {0} » est une adresse interne (réseau privé, local ou réservé) : le hub n'y envoie rien \
     (réseaux autorisés par l'exploitant : CNH_OUTBOUND_ALLOWED_NETWORKS)"
)]
pub struct Refused(pub String);

impl Destinations {
    pub fn new(allowed: Vec<Network>) -> Destinations {
        Destinations { allowed }
    }

    /// These destinations and the local machine (development: receivers and sources run beside the hub).
    pub fn with_loopback(mut self) -> Destinations {
        for network in ["127.0.0.0/8", "::1/128"] {
            self.allowed.push(network.parse().expect("static network"));
        }
        self
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|n| n.contains(ip)) || !NOT_GLOBAL.iter().any(|n| n.contains(ip))
    }

    /// A URL's host, when it is an address or the local machine's name (a name is checked when resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let Some(host) = url.host_str() else { return Ok(()) };
        let ip = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if is_local_name(host) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Err(_) => return Ok(()),
        };
        if self.allows(ip) { Ok(()) } else { Err(Refused(host.to_owned())) }
    }

    /// `check_url` on a URL as stored.
    pub fn check(&self, url: &str) -> Result<(), Refused> {
        match reqwest::Url::parse(url) {
            Ok(url) => self.check_url(&url),
            Err(_) => Err(Refused(url.to_owned())),
        }
    }
}

/// `localhost` and its subdomains name the local machine (RFC 6761), whatever a resolver says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The DNS resolution of the hub's HTTP clients: the system's, keeping only the addresses `Destinations` allows.
pub struct GuardedResolver {
    destinations: Arc<Destinations>,
}

impl GuardedResolver {
    pub fn new(destinations: Arc<Destinations>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { destinations })
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.destinations.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.into_iter().filter(|a| destinations.allows(a.ip())).collect();
            if kept.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        let deny = Destinations::default();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.10",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!deny.allows(ip(internal)), "{internal} is internal");
        }
        for public in
            ["1.1.1.1", "8.8.8.8", "172.32.0.1", "193.51.24.1", "2a01:e0a::1", "::ffff:8.8.8.8", "64:ff9b::808:808"]
        {
            assert!(deny.allows(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn the_operator_names_the_internal_networks_it_allows() {
        let allowed = Destinations::new(vec!["10.20.0.0/16".parse().unwrap(), "fd12::/16".parse().unwrap()]);
        assert!(allowed.allows(ip("10.20.3.4")));
        assert!(allowed.allows(ip("::ffff:10.20.3.4")));
        assert!(!allowed.allows(ip("10.21.0.1")));
        assert!(allowed.allows(ip("fd12:1::5")));
        assert!(!allowed.allows(ip("127.0.0.1")));
        let development = Destinations::default().with_loopback();
        assert!(development.allows(ip("127.0.0.1")) && development.allows(ip("::1")));
        assert!(!development.allows(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "abc", "10.0.0/8", "::1/129", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        assert_eq!("192.168.1.7".parse::<Network>().unwrap(), Network { addr: ip("192.168.1.7"), prefix: 32 });
        assert!(Network { addr: ip("0.0.0.0"), prefix: 0 }.contains(ip("203.0.113.9")));
    }

    #[test]
    fn urls_naming_an_internal_address_or_the_local_machine_are_refused() {
        let deny = Destinations::default();
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://localhost/x",
            "https://api.LOCALHOST./x",
            "http://127.0.0.1:8080/hook",
            "https://[fd00::1]:8443/",
        ] {
            assert!(deny.check(url).is_err(), "{url}");
        }
        for url in ["https://example.org/hook", "https://93.184.215.14/x", "https://[2a01:e0a::1]/"] {
            assert_eq!(deny.check(url), Ok(()), "{url}");
        }
        assert_eq!(Destinations::default().with_loopback().check("http://localhost:9000/h"), Ok(()));
    }

    #[tokio::test]
    async fn names_resolved_to_internal_addresses_are_refused() {
        use reqwest::dns::Resolve;
        let name = |n: &str| reqwest::dns::Name::from_str(n).unwrap();
        let refused = GuardedResolver::new(Arc::new(Destinations::default()));
        let err = refused.resolve(name("localhost")).await.err().expect("localhost resolves to the loopback");
        assert!(err.to_string().contains("adresse interne"), "{err}");
        let allowed = GuardedResolver::new(Arc::new(Destinations::default().with_loopback()));
        let addrs: Vec<SocketAddr> = allowed.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
