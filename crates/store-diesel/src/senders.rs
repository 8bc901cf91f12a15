//! SenderStore port: an organization's senders, listed by address, activated and
//! deleted, each change recording its event in the same transaction.

use async_trait::async_trait;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::OrganizationId;
use domain_core::lifecycle::{EventType, NewEvent, Page, Paged};
use domain_core::ports::InfraError;
use domain_core::ports::lifecycle::{SenderStore, SenderView};

use crate::Store;
use crate::backend::{DbError, in_transaction, with_conn};
use crate::events::record_events;
use crate::locks::lock_organization;
use crate::rows::{SenderViewRow, domain_name, sender_view_columns};

#[async_trait]
impl SenderStore for Store {
    async fn list_senders(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<SenderView, String>, InfraError> {
        // One more than the page: it only says whether a next page exists.
        let fetch = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = page.after.as_deref().unwrap_or("");
        let rows: Vec<SenderViewRow> = with_conn!(&self.backend, |c| {
            senders::table
                .inner_join(domains::table)
                .filter(senders::organization_id.eq(organization.as_str()))
                .filter(senders::email.gt(after))
                .order(senders::email.asc())
                .select(sender_view_columns!())
                .limit(fetch)
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        let senders = rows.into_iter().map(SenderView::from).collect();
        Ok(Paged::from_fetched(
            senders,
            page.limit,
            |s: &SenderView| s.email.clone(),
        ))
    }

    #[tracing::instrument(skip_all, fields(org = %organization))]
    async fn activate_sender(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<Option<SenderView>, InfraError> {
        let org = organization.as_str();
        let activated = in_transaction!(&self.backend, |c| {
            let now = Utc::now();
            // The organization's row, as in register-sender: switching the active
            // sender is a read-modify-write, so the organization's activations and
            // registrations take turns (one active sender after).
            let org_exists = lock_organization!(c, org)?;
            if org_exists == 0 {
                return Ok(None);
            }
            let found: Option<(i64, SenderViewRow)> = senders::table
                .inner_join(domains::table)
                .filter(senders::organization_id.eq(org))
                .filter(senders::email.eq(email))
                .select((senders::id, sender_view_columns!()))
                .first(c)
                .await
                .optional()?;
            let Some((sender_id, mut sender)) = found else {
                return Ok(None);
            };
            // Deactivate first: the partial unique index allows one active sender.
            diesel::update(
                senders::table
                    .filter(senders::organization_id.eq(org))
                    .filter(senders::active)
                    .filter(senders::id.ne(sender_id)),
            )
            .set(senders::active.eq(false))
            .execute(c)
            .await?;
            diesel::update(senders::table.find(sender_id))
                .set(senders::active.eq(true))
                .execute(c)
                .await?;
            sender.active = true;
            let event = NewEvent::sender(
                organization,
                EventType::SenderActivated,
                &domain_name(&sender.domain)?,
                &sender.email,
            );
            record_events!(c, [&event], now)?;
            Ok(Some(SenderView::from(sender)))
        })?;
        Ok(activated)
    }

    #[tracing::instrument(skip_all, fields(org = %organization))]
    async fn delete_sender(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<bool, InfraError> {
        let org = organization.as_str();
        let deleted = in_transaction!(&self.backend, |c| {
            // The organization's row, as in register-sender: the delete moves the
            // domain's sender count, which registrations read and move under this
            // lock, and taking it first keeps the two from waiting on each other.
            if lock_organization!(c, org)? == 0 {
                return Ok(false);
            }
            let found: Option<(i64, String)> = senders::table
                .inner_join(domains::table)
                .filter(senders::organization_id.eq(org))
                .filter(senders::email.eq(email))
                .select((senders::id, domains::name))
                .first(c)
                .await
                .optional()?;
            let Some((sender_id, domain)) = found else {
                return Ok(false);
            };
            // Only the row we read: a concurrent delete of it leaves 0 and no event.
            let removed = diesel::delete(senders::table.find(sender_id))
                .execute(c)
                .await?;
            if removed == 0 {
                return Ok(false);
            }
            let event = NewEvent::sender(
                organization,
                EventType::SenderDeleted,
                &domain_name(&domain)?,
                email,
            );
            record_events!(c, [&event], Utc::now())?;
            Ok(true)
        })?;
        Ok(deleted)
    }
}
