//! KeyGenerator port on RSA-2048 (`rsa` 0.10), with private keys sealed under the
//! master key by AES-256-GCM (`ring`), each bound to its domain; DkimSigner port on
//! `mail-auth`, opening those keys to sign messages.

mod answers;
mod domain_connect;
mod generator;
mod master_key;
mod pool;
mod rng;
mod sealing;
mod signer;
mod vault;
mod webhook_secrets;

pub use answers::RingAnswerSealer;
pub use domain_connect::{DomainConnectKey, DomainConnectKeyError};
pub use generator::{RsaKeyGenerator, generate_key_blocking};
pub use master_key::{MasterKey, MasterKeyError};
pub use pool::{KeyPool, PoolStats};
pub use sealing::{SealError, Sealer};
pub use signer::{RsaDkimSigner, SIGNED_HEADERS, sign_blocking};
pub use webhook_secrets::RingWebhookSecrets;
