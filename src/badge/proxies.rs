//! Who a verification over HTTP comes from when the service sits behind a reverse proxy (an
//! Ingress): the TCP peer is then the proxy, and every phone would share one allowance. From
//! a trusted proxy, the client is the right-most address of `X-Forwarded-For` that is not
//! itself a trusted proxy (RFC 7239's reasoning: only the entries our proxies appended can be
//! believed, the left-most is whatever the client wrote).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// `--verify-trusted-proxies`: the addresses or networks of the proxies in front of the
/// verification port. Empty: the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Networks (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a network"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request from `peer` that carried `forwarded_for` (the values of every
    /// `X-Forwarded-For` header, in order).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            // A hop that does not parse is not ours: nothing to its left can be believed.
            let Ok(address) = IpAddr::from_str(hop) else {
                return peer;
            };
            if !self.trusts(address) {
                return address;
            }
        }
        peer
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.7"), &["198.51.100.1"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn from_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let ingress = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        let peer = ip("10.1.2.3");
        assert_eq!(ingress.client(peer, &["203.0.113.7"]), ip("203.0.113.7"));
        // The client wrote its own left-most entry: only what our proxies appended counts.
        assert_eq!(
            ingress.client(peer, &["1.1.1.1, 203.0.113.7, 192.0.2.1"]),
            ip("203.0.113.7")
        );
        // Several headers are one list.
        assert_eq!(
            ingress.client(peer, &["1.1.1.1", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Nothing forwarded, or garbage where our proxy's entry should be: the peer.
        assert_eq!(ingress.client(peer, &[]), peer);
        assert_eq!(ingress.client(peer, &["1.1.1.1, not-an-address"]), peer);
        // A peer that is not a trusted proxy is believed for itself only.
        assert_eq!(
            ingress.client(ip("198.51.100.9"), &["1.1.1.1"]),
            ip("198.51.100.9")
        );
        // IPv4-mapped peers are IPv4.
        assert_eq!(
            ingress.client(ip("::ffff:10.1.2.3"), &["203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn entries_that_are_not_addresses_or_networks_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::/8".into()]).is_ok());
        assert!(TrustedProxies::parse(&["ingress".into()]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
