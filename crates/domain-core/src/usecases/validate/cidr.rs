//! CIDR matching for SPF's `ip4:`/`ip6:` mechanisms (RFC 7208 §5.6): does a network,
//! written `addr` or `addr/prefix`, contain an address?

use std::net::IpAddr;

use ipnet::IpNet;

/// Whether `network` (`addr` or `addr/prefix`) contains `ip`; false when malformed
/// or of the other address family.
pub(super) fn network_contains(network: &str, ip: IpAddr) -> bool {
    parse_network(network).is_some_and(|net| net.contains(&ip))
}

/// `addr/prefix` as written, or a bare `addr` as the network of that one host.
fn parse_network(network: &str) -> Option<IpNet> {
    match network.split_once('/') {
        None => network.parse::<IpAddr>().ok().map(IpNet::from),
        // ipnet's parser takes IPv4 octets with leading zeros (`051.79.43.0/24`),
        // which RFC 7208 (and std, for the bare form above) refuse: the address part
        // must parse with std too, or the two forms would disagree.
        Some((address, _)) => {
            address.parse::<IpAddr>().ok()?;
            network.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ip_networks_exactly_or_by_prefix() {
        let v4: IpAddr = "51.79.43.241".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (network, ip, expected) in [
            ("51.79.43.241", v4, true),
            ("51.79.43.241/32", v4, true),
            ("51.79.43.0/24", v4, true),
            ("51.79.42.0/24", v4, false),
            ("51.64.0.0/10", v4, true),
            ("0.0.0.0/0", v4, true),
            ("51.79.43.240", v4, false),
            ("51.79.43.241/33", v4, false),
            ("51.79.43.241/", v4, false),
            ("51.79.43.241/+8", v4, false),
            ("not-an-ip", v4, false),
            ("2001:db8::/32", v4, false),
            ("2001:db8::/32", v6, true),
            ("2001:db8::1", v6, true),
            ("2001:db9::/32", v6, false),
            ("::/0", v6, true),
            ("2001:db8::/129", v6, false),
            ("51.79.43.0/24", v6, false),
        ] {
            assert_eq!(network_contains(network, ip), expected, "{network} ∋ {ip}");
        }
    }

    #[test]
    fn refuses_octets_with_leading_zeros_in_either_form() {
        let ip: IpAddr = "51.79.43.241".parse().unwrap();
        for network in ["051.79.43.241", "051.79.43.0/24", "51.079.43.241/32"] {
            assert!(!network_contains(network, ip), "{network}");
        }
    }
}
