//! Fixtures shared by the use-case tests.

use std::sync::Arc;

use crate::{OrganizationId, RecordPolicy};

/// The calling organization in every use-case test.
pub(crate) fn org() -> OrganizationId {
    OrganizationId::new("org-a")
}

/// The default policy: the seed's SPF IP and inbound hosts.
pub(crate) fn policy() -> Arc<RecordPolicy> {
    Arc::new(
        RecordPolicy::new(
            vec!["51.79.43.241".parse().expect("an IP")],
            &["inbound.sendtrim.com".into(), "smtp.sendtrim.com".into()],
        )
        .expect("a valid policy"),
    )
}
