//! The domain of sender-domain provisioning, free of any adapter.
//!
//! Value types are parsed once and valid thereafter ([`EmailAddress`], [`DomainName`],
//! [`Selector`], [`ApiCredentials`]); [`ports`] are the traits adapters implement;
//! [`usecases`] hold the ports and run the seed's steps. Another service can depend on
//! this crate alone and plug in its own adapters (see `docs/architecture.md`).

#![warn(missing_docs)]

mod domain_name;
mod email;
pub mod lifecycle;
mod organization;
pub mod ownership;
mod published;
mod records;
mod selector;
mod tokens;
pub mod webhooks;

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

/// The API token format's constants.
pub mod token_format {
    pub use crate::tokens::{ACCESS_PREFIX, RANDOM_BYTES, SECRET_PREFIX, TAG_BYTES};
}
