//! One budget for DKIM key generation per organization: new domains, rotations and
//! claims draw on the same window (`CreationLimits::per_minute`), counted by the
//! store across instances, so no tenant spends the cores every tenant shares on RSA
//! key generation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::OrganizationId;
use crate::ownership::{CreationLimits, creation_wait};
use crate::ports::InfraError;
use crate::ports::lifecycle::KeyGenerations;

/// The key-generation budget of every organization.
#[derive(Clone)]
pub struct KeyBudget {
    store: Arc<dyn KeyGenerations>,
    limits: CreationLimits,
}

impl KeyBudget {
    /// A budget of `limits.per_minute` keys per organization in any 60-second window
    /// (`limits.max_domains` bounds what a claim may take the organization to).
    #[must_use]
    pub fn new(store: Arc<dyn KeyGenerations>, limits: CreationLimits) -> Self {
        Self { store, limits }
    }

    /// The limits the budget holds organizations to.
    #[must_use]
    pub fn limits(&self) -> CreationLimits {
        self.limits
    }

    /// How long until `organization` may generate another key (`None`: now).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn wait(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, InfraError> {
        let latest = self
            .store
            .latest_key_generations(organization, self.limits.per_minute)
            .await?;
        Ok(creation_wait(&latest, self.limits, now))
    }
}

impl std::fmt::Debug for KeyBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBudget")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
