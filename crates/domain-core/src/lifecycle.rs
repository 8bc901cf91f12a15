//! The states a domain and its DKIM keys move through after `generate`, and the
//! events those moves produce (the wire contract is in `docs/api.md`, "Domain state" and
//! "DKIM keys and rotation").

use chrono::{DateTime, Utc};

use crate::{DomainName, OrganizationId, Selector};

/// Where a DKIM key is in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// The key mail is signed with; exactly one per domain.
    Active,
    /// A new key waiting to be seen published; at most one per domain.
    Pending,
    /// The previous active key, still published while mail signed with it may be
    /// verified.
    Retiring,
    /// Revoked: its record is `p=` (RFC 6376 §3.6.1) and its private key is destroyed.
    Revoked,
}

impl KeyState {
    /// The wire and storage name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Retiring => "retiring",
            Self::Revoked => "revoked",
        }
    }

    /// The state of a stored name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Active, Self::Pending, Self::Retiring, Self::Revoked]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// Whether a domain's records have been seen published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainStatus {
    /// Created; not yet seen published.
    Pending,
    /// SPF, the active DKIM key and DMARC were all seen correct once.
    Verified,
    /// Was verified, then two checks in a row found a record missing or wrong.
    Failing,
}

impl DomainStatus {
    /// The wire and storage name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Failing => "failing",
        }
    }

    /// The status of a stored name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Verified, Self::Failing]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// One DKIM key of a domain, as stored (the private half stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The selector: the key's record is `<selector>._domainkey.<domain>`.
    pub selector: Selector,
    /// Where the key is in its rotation.
    pub state: KeyState,
    /// SubjectPublicKeyInfo DER, base64.
    pub public_key: String,
    /// When the key was generated.
    pub created_at: DateTime<Utc>,
    /// When it became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it stopped being active.
    pub retired_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A domain was created by `generate`.
    DomainCreated,
    /// A domain's records were seen correct.
    DomainVerified,
    /// A verified domain failed two checks in a row.
    DomainFailing,
    /// A domain was deleted.
    DomainDeleted,
    /// An organization took a domain over by proving DNS control (to the new owner).
    DomainClaimed,
    /// A domain was taken over by another organization (to the old owner).
    DomainTransferred,
    /// Inbound mail was turned on.
    DomainInboundEnabled,
    /// Inbound mail was turned off.
    DomainInboundDisabled,
    /// A new key was created, pending.
    DkimRotationStarted,
    /// A pending key became active.
    DkimKeyActivated,
    /// A retiring key was revoked.
    DkimKeyRevoked,
    /// A sender address was registered.
    SenderRegistered,
    /// A sender became the organization's active sender.
    SenderActivated,
    /// A sender was deleted.
    SenderDeleted,
}

impl EventType {
    /// Every type, in the order docs/api.md lists them.
    pub const ALL: [Self; 14] = [
        Self::DomainCreated,
        Self::DomainVerified,
        Self::DomainFailing,
        Self::DomainDeleted,
        Self::DomainClaimed,
        Self::DomainTransferred,
        Self::DomainInboundEnabled,
        Self::DomainInboundDisabled,
        Self::DkimRotationStarted,
        Self::DkimKeyActivated,
        Self::DkimKeyRevoked,
        Self::SenderRegistered,
        Self::SenderActivated,
        Self::SenderDeleted,
    ];

    /// The wire and storage name, e.g. `domain.created`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DomainCreated => "domain.created",
            Self::DomainVerified => "domain.verified",
            Self::DomainFailing => "domain.failing",
            Self::DomainDeleted => "domain.deleted",
            Self::DomainClaimed => "domain.claimed",
            Self::DomainTransferred => "domain.transferred",
            Self::DomainInboundEnabled => "domain.inbound_enabled",
            Self::DomainInboundDisabled => "domain.inbound_disabled",
            Self::DkimRotationStarted => "dkim.rotation_started",
            Self::DkimKeyActivated => "dkim.key_activated",
            Self::DkimKeyRevoked => "dkim.key_revoked",
            Self::SenderRegistered => "sender.registered",
            Self::SenderActivated => "sender.activated",
            Self::SenderDeleted => "sender.deleted",
        }
    }

    /// The type of a stored or requested name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

/// An event to record, in the same unit of work as the change it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The organization that sees it.
    pub organization: OrganizationId,
    /// What happened.
    pub kind: EventType,
    /// The domain it is about (A-label), for every event about a domain.
    pub domain: Option<DomainName>,
    /// The key's selector, for `dkim.*` events.
    pub selector: Option<Selector>,
    /// The sender's address, for `sender.*` events.
    pub email: Option<String>,
}

impl NewEvent {
    /// An event about `domain`.
    #[must_use]
    pub fn domain(organization: &OrganizationId, kind: EventType, domain: &DomainName) -> Self {
        Self {
            organization: organization.clone(),
            kind,
            domain: Some(domain.clone()),
            selector: None,
            email: None,
        }
    }

    /// An event about one key of `domain`.
    #[must_use]
    pub fn key(
        organization: &OrganizationId,
        kind: EventType,
        domain: &DomainName,
        selector: &Selector,
    ) -> Self {
        Self {
            selector: Some(selector.clone()),
            ..Self::domain(organization, kind, domain)
        }
    }

    /// An event about the sender `email` on `domain`.
    #[must_use]
    pub fn sender(
        organization: &OrganizationId,
        kind: EventType,
        domain: &DomainName,
        email: &str,
    ) -> Self {
        Self {
            email: Some(email.to_owned()),
            ..Self::domain(organization, kind, domain)
        }
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Increasing; `after` in the events list.
    pub id: i64,
    /// What happened.
    pub kind: EventType,
    /// The domain (A-label) it is about, if any.
    pub domain: Option<String>,
    /// The key's selector, for `dkim.*` events.
    pub selector: Option<String>,
    /// The sender's address, for `sender.*` events.
    pub email: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// One page of a list: items after `after` (exclusive), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<C> {
    /// The cursor: the last item of the previous page.
    pub after: Option<C>,
    /// Items per page, 1–1000.
    pub limit: usize,
}

impl<C> Page<C> {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 100;
    /// The largest page size.
    pub const MAX_LIMIT: usize = 1000;
}

/// A page of items and the cursor of the next page, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T, C> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// `after` for the next page; `None` on the last page.
    pub next: Option<C>,
}

impl<T, C> Paged<T, C> {
    /// Cuts `fetched` (at most `limit + 1` items, in order) to a page: the extra item
    /// only says there is a next page, whose cursor is the last item kept.
    pub fn from_fetched(mut fetched: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Self {
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next = if more {
            fetched.last().map(cursor)
        } else {
            None
        };
        Self {
            items: fetched,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        for state in [
            KeyState::Active,
            KeyState::Pending,
            KeyState::Retiring,
            KeyState::Revoked,
        ] {
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DomainStatus::parse("failing"), Some(DomainStatus::Failing));
        assert_eq!(EventType::parse("domain.nope"), None);
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_items_exist() {
        let page = Paged::from_fetched(vec![1, 2, 3], 2, |n| *n);
        assert_eq!((page.items, page.next), (vec![1, 2], Some(2)));
        let last = Paged::from_fetched(vec![1, 2], 2, |n| *n);
        assert_eq!((last.items, last.next), (vec![1, 2], None));
    }
}
