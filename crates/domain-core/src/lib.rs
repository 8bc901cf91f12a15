//! The domain of sender-domain provisioning, free of any adapter: the value types,
//! the rules, the ports (traits) adapters implement, and the use cases that run on
//! them. Another service can depend on this crate alone and plug in its own adapters.
//!
//! - Value types are parsed once and valid thereafter: [`EmailAddress`] and
//!   [`DomainName`] (internationalised names, the Public Suffix List), [`Selector`],
//!   [`ApiCredentials`].
//! - [`RecordSet`] renders the SPF, DKIM and DMARC records of a domain;
//!   [`RecordSet::published`] and [`zone_lines`] give them as DNS records (hosts
//!   relative to a [`Zone`]) and as zone-file lines. None of this needs a port.
//! - [`ports`] are the traits; with the `mocks` feature, [`ports::mocks`] has a
//!   mockall double of each, and an example running
//!   [`GenerateRecords`](usecases::generate::GenerateRecords) on them.
//! - [`usecases`] hold the ports and run one operation each (generate, verify,
//!   rotate, claim, sign, deliver webhooks, …).
//! - [`ownership`] holds who may take which domain; `Ownership::default()` refuses
//!   the mailbox providers the service refuses (`gmail.com`, `outlook.com`, …).
//! - Times in the public API are [`chrono`]'s, re-exported here.
//!
//! ```
//! use domain_core::{
//!     DomainName, EmailAddress, RecordPolicy, RecordSet, Selector, ZONE_TTL, Zone, zone_lines,
//! };
//!
//! let sender = EmailAddress::parse("first.last@Bücher.example")?;
//! let domain = sender.domain();
//! assert_eq!(domain.as_ascii(), "xn--bcher-kva.example");
//! assert_eq!(domain.to_unicode(), "bücher.example");
//!
//! let policy = RecordPolicy::new(vec!["192.0.2.10".parse()?], &["mx1.example.net".into()])?;
//! let records = RecordSet::render(&policy, domain, &Selector::new("s2026a")?, "MIIBIjANBgkq");
//! assert_eq!(
//!     records.entries(),
//!     [
//!         ("SPF", "v=spf1 ip4:192.0.2.10 -all"),
//!         ("s2026a._domainkey.xn--bcher-kva.example", "v=DKIM1; k=rsa; p=MIIBIjANBgkq"),
//!         ("_dmarc", "v=DMARC1; p=none; rua=mailto:dmarc@xn--bcher-kva.example"),
//!     ]
//! );
//! // Hosts relative to the zone; without a lookup's finding, the registrable domain.
//! let published = records.published(domain, &Zone::of(domain, None), ZONE_TTL);
//! assert_eq!(published[2].name, "_dmarc.xn--bcher-kva.example");
//! assert_eq!(published[2].host, "_dmarc");
//! let zone = zone_lines(domain, &published);
//! assert!(zone.contains("_dmarc.xn--bcher-kva.example. 3600 IN TXT \"v=DMARC1;"));
//!
//! // Refused as a sender domain: a public suffix, a special-use name.
//! assert!(EmailAddress::parse("x@co.uk").is_ok()); // syntax only; ownership refuses it
//! assert!(!domain_core::ownership::is_sender_domain(&DomainName::parse("co.uk")?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The time types of the public API (`DateTime<Utc>`, `TimeDelta`), so a consumer
/// needs no chrono of its own to build or read them.
pub use chrono;

mod domain_name;
mod email;
pub mod inbound_mx;
pub mod last_check;
pub mod lifecycle;
mod organization;
pub mod ownership;
mod published;
mod records;
mod selector;
mod tokens;
pub mod webhooks;
mod zone;

pub mod ports;
pub mod usecases;

pub use domain_name::{DomainName, DomainNameError};
pub use email::{EmailAddress, EmailError};
pub use organization::{
    ApiCredentials, InvalidOrganizationName, MissingCredentials, OrganizationId, OrganizationName,
};
pub use ports::keys::{DkimKey, SealedKey};
pub use published::{MAX_TXT_STRING, PublishedRecord, ZONE_TTL, split_txt, zone_lines};
pub use records::{PolicyError, RecordPolicy, RecordSet};
pub use selector::{Selector, SelectorError};
pub use tokens::{AccessTokenShape, IssuedToken};
pub use zone::{Zone, ZoneSource, find_zone};

/// The API token format's constants.
pub mod token_format {
    pub use crate::tokens::{ACCESS_PREFIX, RANDOM_BYTES, SECRET_PREFIX, TAG_BYTES};
}
