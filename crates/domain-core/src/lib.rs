//! The domain of sender-domain provisioning, free of any adapter.
//!
//! Value types are parsed once and valid thereafter ([`EmailAddress`], [`DomainName`],
//! [`Selector`], [`ApiCredentials`]); [`ports`] are the traits adapters implement;
//! [`usecases`] hold the ports and run the seed's steps. Another service can depend on
//! this crate alone and plug in its own adapters (see `docs/architecture.md`).

mod domain_name;
mod email;
mod organization;
mod published;
mod records;
mod selector;

pub mod ports;
pub mod usecases;

pub use domain_name::{DomainName, DomainNameError};
pub use email::{EmailAddress, EmailError};
pub use organization::{ApiCredentials, MissingCredentials, OrganizationId};
pub use ports::keys::{DkimKey, SealedKey};
pub use published::{MAX_TXT_STRING, PublishedRecord, split_txt};
pub use records::{PolicyError, RecordPolicy, RecordSet};
pub use selector::{Selector, SelectorError};
