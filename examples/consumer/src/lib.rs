//! How another service uses domain-core: the pure parts with no port at all, and the
//! use cases built over ports it implements itself. Every example of
//! docs/architecture.md ("Reusing `domain-core` from another service") is here, built
//! and tested by CI.

use std::sync::Arc;

use domain_core::ownership::{Ownership, is_sender_domain};
use domain_core::ports::clock::{Clock, SystemClock};
use domain_core::ports::dns::Dns;
use domain_core::ports::keys::KeyGenerator;
use domain_core::ports::lifecycle::KeyLifecycleStore;
use domain_core::ports::signing::DkimSigner;
use domain_core::ports::store::DomainStore;
use domain_core::usecases::generate::GenerateRecords;
use domain_core::usecases::sign::{SignMessage, SignMessageError};
use domain_core::usecases::validate::ValidateDomain;
use domain_core::usecases::verify::{KeyPolicy, VerifyDomain, VerifySchedule};
use domain_core::{
    EmailAddress, PublishedRecord, RecordPolicy, RecordSet, Selector, Zone, zone_lines,
};

/// Why an address gets no records.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not an address.
    Syntax,
    /// A public suffix or a special-use name: nobody's sender domain.
    NotASenderDomain,
    /// A mailbox provider (or another reserved name).
    Reserved,
}

/// The records to publish for `email`'s domain with the DKIM key `public_key` under
/// `selector`, and their zone-file lines, with no port at all.
///
/// # Errors
/// [`Refused`] when the address gets no records.
pub fn records_for(
    email: &str,
    policy: &RecordPolicy,
    selector: &Selector,
    public_key: &str,
) -> Result<(Vec<PublishedRecord>, String), Refused> {
    let email = EmailAddress::parse(email).map_err(|_| Refused::Syntax)?;
    let domain = email.domain();
    if !is_sender_domain(domain) {
        return Err(Refused::NotASenderDomain);
    }
    if Ownership::default().reserved.contains(domain) {
        return Err(Refused::Reserved);
    }
    // Hosts relative to the registrable domain: no DNS lookup here to find the zone.
    let published = RecordSet::render(policy, domain, selector, public_key).published(
        domain,
        &Zone::of(domain, None),
        policy.ttl(),
    );
    let zone = zone_lines(domain, &published);
    Ok((published, zone))
}

/// Generate over your own store, key generator and DNS: the service's defaults for
/// ownership (mailbox providers reserved), the check schedule and the clock.
#[must_use]
pub fn generator(
    store: Arc<dyn DomainStore>,
    keys: Arc<dyn KeyGenerator>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
) -> GenerateRecords {
    GenerateRecords::new(
        store,
        keys,
        dns,
        policy,
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    )
}

/// The check that moves a domain's lifecycle on (what the HTTP `verify` route runs).
#[must_use]
pub fn verifier(
    store: Arc<dyn DomainStore>,
    lifecycle: Arc<dyn KeyLifecycleStore>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
    clock: Arc<dyn Clock>,
) -> VerifyDomain {
    VerifyDomain::new(
        ValidateDomain::new(store, dns, policy),
        lifecycle,
        clock,
        KeyPolicy::default(),
        Arc::new(VerifySchedule::default()),
    )
}

/// What a sending service does with an outgoing message: signed with the domain's
/// active key when the domain is one of ours; `None` when it is not (send unsigned,
/// or refuse: the caller's choice).
///
/// # Errors
/// A malformed message, a key that does not open, or the store failing.
pub async fn sign_outgoing(
    store: Arc<dyn DomainStore>,
    signer: Arc<dyn DkimSigner>,
    domain: &str,
    raw_message: &[u8],
) -> Result<Option<Vec<u8>>, SignMessageError> {
    let sign = SignMessage::new(store, signer);
    match sign.execute(domain, raw_message).await {
        Ok(signed) => Ok(Some(signed.prepend_to(raw_message))),
        Err(SignMessageError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}
