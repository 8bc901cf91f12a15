//! `Dns::addresses` of `HickoryDns` against the in-process authoritative server, over
//! real UDP on 127.0.0.1: A and AAAA records together, and the negative answers
//! (NXDOMAIN, a name with neither, SERVFAIL) told apart.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use dns_hickory::test_support::TestDnsServer;
use dns_hickory::{DnsConfig, HickoryDns};
use domain_core::ports::dns::{Dns, DnsError};

const TIMEOUT: Duration = Duration::from_secs(2);

fn resolver(server: &TestDnsServer) -> HickoryDns {
    HickoryDns::new(&DnsConfig::with_servers(vec![server.addr()], TIMEOUT))
        .expect("the resolver builds")
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().expect("an IPv6 address"))
}

fn set(addresses: &[IpAddr]) -> HashSet<IpAddr> {
    addresses.iter().copied().collect()
}

#[tokio::test]
async fn a_and_aaaa_records_come_back_together() {
    let server = TestDnsServer::start().await;
    let published = [
        v4(203, 0, 113, 10),
        v6("2001:db8::10"),
        v4(198, 51, 100, 7),
        v6("2001:db8:1::7"),
    ];
    for address in published {
        server.add_address("hooks.example.com", address);
    }
    // Another name's addresses are not mixed in.
    server.add_address("other.example.com", v4(192, 0, 2, 1));

    let addresses = resolver(&server)
        .addresses("hooks.example.com")
        .await
        .expect("the addresses");

    assert_eq!(addresses.len(), published.len(), "{addresses:?}");
    assert_eq!(set(&addresses), set(&published));
    // The final dot and the case make no difference.
    let again = resolver(&server)
        .addresses("Hooks.Example.COM.")
        .await
        .expect("the addresses");
    assert_eq!(set(&again), set(&published));
}

#[tokio::test]
async fn one_family_alone_is_enough() {
    let server = TestDnsServer::start().await;
    server.add_address("four.example.com", v4(203, 0, 113, 4));
    server.add_address("six.example.com", v6("2001:db8::6"));
    let dns = resolver(&server);

    assert_eq!(
        dns.addresses("four.example.com").await,
        Ok(vec![v4(203, 0, 113, 4)])
    );
    assert_eq!(
        dns.addresses("six.example.com").await,
        Ok(vec![v6("2001:db8::6")])
    );
}

#[tokio::test]
async fn an_unknown_name_is_nxdomain() {
    let server = TestDnsServer::start().await;
    server.add_address("known.example.com", v4(203, 0, 113, 1));

    assert_eq!(
        resolver(&server).addresses("unknown.example.com").await,
        Err(DnsError::NxDomain)
    );
}

#[tokio::test]
async fn a_name_with_neither_a_nor_aaaa_has_no_records() {
    let server = TestDnsServer::start().await;
    server.add_txt("text-only.example.com", &["v=spf1 -all"]);
    server.add_mx("mail-only.example.com", 10, "mx.example.com");
    // An empty non-terminal: a name below it has addresses, it has none.
    server.add_address("host.parent.example.com", v4(203, 0, 113, 2));
    let dns = resolver(&server);

    assert_eq!(
        dns.addresses("text-only.example.com").await,
        Err(DnsError::NoRecords)
    );
    assert_eq!(
        dns.addresses("mail-only.example.com").await,
        Err(DnsError::NoRecords)
    );
    assert_eq!(
        dns.addresses("parent.example.com").await,
        Err(DnsError::NoRecords)
    );
}

#[tokio::test]
async fn servfail_is_reported_as_such_and_is_not_remembered() {
    let server = TestDnsServer::start().await;
    server.add_address("broken.example.com", v4(203, 0, 113, 3));
    server.add_address("broken.example.com", v6("2001:db8::3"));
    server.set_servfail("broken.example.com");
    let dns = resolver(&server);

    assert_eq!(
        dns.addresses("broken.example.com").await,
        Err(DnsError::ServFail)
    );

    // Once the server answers again, so does the resolver (nothing is cached).
    server.clear("broken.example.com");
    server.add_address("broken.example.com", v4(203, 0, 113, 3));
    assert_eq!(
        dns.addresses("broken.example.com").await,
        Ok(vec![v4(203, 0, 113, 3)])
    );
}
