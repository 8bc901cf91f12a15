//! Senders and events: the organization's sender addresses (list, activate, delete)
//! and its event log.

use std::sync::Arc;

use crate::EmailAddress;
use crate::OrganizationId;
use crate::lifecycle::{Event, Page, Paged};
use crate::ports::InfraError;
use crate::ports::lifecycle::{EventStore, SenderStore, SenderView};

/// Why a sender command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// No such sender for this organization (also another organization's).
    #[error("no such sender for this organization")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// The organization's senders.
#[derive(Clone)]
pub struct ManageSenders {
    store: Arc<dyn SenderStore>,
}

/// The canonical form of an address as typed; an address that does not parse can
/// name no sender.
fn canonical(email: &str) -> Result<String, SenderError> {
    EmailAddress::parse(email)
        .map(|e| e.canonical())
        .map_err(|_| SenderError::NotFound)
}

impl ManageSenders {
    /// The use case over a sender store.
    #[must_use]
    pub fn new(store: Arc<dyn SenderStore>) -> Self {
        Self { store }
    }

    /// One page of senders, by address.
    ///
    /// # Errors
    /// A port failure.
    pub async fn list(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<SenderView, String>, SenderError> {
        Ok(self.store.list_senders(organization, page).await?)
    }

    /// Makes `email` the organization's active sender.
    ///
    /// # Errors
    /// [`SenderError::NotFound`], or a port failure.
    pub async fn activate(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<SenderView, SenderError> {
        let email = canonical(email)?;
        self.store
            .activate_sender(organization, &email)
            .await?
            .ok_or(SenderError::NotFound)
    }

    /// Deletes `email`.
    ///
    /// # Errors
    /// [`SenderError::NotFound`], or a port failure.
    pub async fn delete(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<(), SenderError> {
        let email = canonical(email)?;
        if self.store.delete_sender(organization, &email).await? {
            Ok(())
        } else {
            Err(SenderError::NotFound)
        }
    }
}

impl std::fmt::Debug for ManageSenders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageSenders").finish_non_exhaustive()
    }
}

/// The organization's events, oldest first.
#[derive(Clone)]
pub struct ListEvents {
    store: Arc<dyn EventStore>,
}

impl ListEvents {
    /// The use case over an event store.
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    /// One page of events after `page.after`.
    ///
    /// # Errors
    /// A port failure.
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        page: &Page<i64>,
    ) -> Result<Paged<Event, i64>, InfraError> {
        self.store.list_events(organization, page).await
    }
}

impl std::fmt::Debug for ListEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListEvents").finish_non_exhaustive()
    }
}
