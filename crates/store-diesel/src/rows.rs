//! Rows as read from the database, the column lists that read them, and their
//! conversion into domain values. A stored value that does not parse is reported as
//! corrupt, never papered over.

use chrono::{DateTime, Utc};
use diesel::Queryable;
use domain_core::last_check::LastCheck;
use domain_core::lifecycle::{DomainStatus, KeyRecord, KeyState};
use domain_core::ports::lifecycle::SenderView;
use domain_core::ports::store::StoredDomain;
use domain_core::{DomainName, OrganizationId, Selector};

use crate::backend::DbError;

/// A domain joined with its active key, as selected by [`domain_columns!`].
#[derive(Debug, Queryable)]
pub(crate) struct DomainRow {
    pub id: i64,
    pub organization: String,
    pub name: String,
    pub selector: String,
    pub public_key: String,
    pub inbound_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub failed_checks: i32,
    pub last_check: Option<String>,
    pub zone: Option<String>,
}

/// `domains` joined with the domain's active key: every read of a domain goes
/// through it, so a domain is always seen with the key mail is signed with.
macro_rules! domains_with_active_key {
    () => {
        domains::table.inner_join(
            dkim_keys::table.on(dkim_keys::domain_id
                .eq(domains::id)
                .and(dkim_keys::state.eq(domain_core::lifecycle::KeyState::Active.as_str()))),
        )
    };
}

/// The columns of [`DomainRow`], from [`domains_with_active_key!`].
macro_rules! domain_columns {
    () => {
        (
            domains::id,
            domains::organization_id,
            domains::name,
            dkim_keys::selector,
            dkim_keys::public_key,
            domains::inbound_enabled,
            domains::created_at,
            domains::status,
            domains::verified_at,
            domains::last_checked_at,
            domains::next_check_at,
            domains::failed_checks,
            domains::last_check,
            domains::zone,
        )
    };
}

/// The domain's number of senders, kept by the senders' triggers in a row of its
/// own (`None` before its first sender): reading it costs the same whatever the
/// domain's size, and writing it never waits for the domain's row.
macro_rules! sender_count {
    () => {
        domain_sender_counts::table
            .filter(domain_sender_counts::domain_id.eq(domains::id))
            .select(domain_sender_counts::sender_count)
            .single_value()
    };
}

pub(crate) use {domain_columns, domains_with_active_key, sender_count};

/// `name` as a domain name, or corrupt.
pub(crate) fn domain_name(name: &str) -> Result<DomainName, DbError> {
    DomainName::parse(name).map_err(|e| DbError::Corrupt(format!("domain {name:?}: {e}")))
}

fn selector(value: String, domain: &str) -> Result<Selector, DbError> {
    Selector::new(value).map_err(|e| DbError::Corrupt(format!("selector of {domain}: {e}")))
}

impl DomainRow {
    pub(crate) fn into_domain(self) -> Result<StoredDomain, DbError> {
        let name = domain_name(&self.name)?;
        let status = DomainStatus::parse(&self.status).ok_or_else(|| {
            DbError::Corrupt(format!("status {:?} of {}", self.status, self.name))
        })?;
        let failed_checks = u32::try_from(self.failed_checks)
            .map_err(|_| DbError::Corrupt(format!("failed_checks of {}", self.name)))?;
        let zone = self.zone.as_deref().map(domain_name).transpose()?;
        Ok(StoredDomain {
            selector: selector(self.selector, &self.name)?,
            name,
            organization: OrganizationId::new(self.organization),
            public_key: self.public_key,
            inbound_enabled: self.inbound_enabled,
            created_at: self.created_at,
            status,
            verified_at: self.verified_at,
            last_checked_at: self.last_checked_at,
            next_check_at: self.next_check_at,
            failed_checks,
            last_check: self
                .last_check
                .map(|text| {
                    LastCheck::decode(&text)
                        .ok_or_else(|| DbError::Corrupt(format!("last_check of {}", self.name)))
                })
                .transpose()?,
            zone,
        })
    }
}

/// One DKIM key, as selected by [`key_columns!`].
#[derive(Debug, Queryable)]
pub(crate) struct KeyRow {
    pub selector: String,
    pub state: String,
    pub public_key: String,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The columns of [`KeyRow`] (never the sealed private key).
macro_rules! key_columns {
    () => {
        (
            dkim_keys::selector,
            dkim_keys::state,
            dkim_keys::public_key,
            dkim_keys::created_at,
            dkim_keys::activated_at,
            dkim_keys::retired_at,
            dkim_keys::revoked_at,
        )
    };
}

pub(crate) use key_columns;

impl KeyRow {
    pub(crate) fn into_key(self, domain: &str) -> Result<KeyRecord, DbError> {
        let state = KeyState::parse(&self.state)
            .ok_or_else(|| DbError::Corrupt(format!("key state {:?} of {domain}", self.state)))?;
        Ok(KeyRecord {
            selector: selector(self.selector, domain)?,
            state,
            public_key: self.public_key,
            created_at: self.created_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A sender with its domain's name, as selected by [`sender_view_columns!`].
#[derive(Debug, Queryable)]
pub(crate) struct SenderViewRow {
    pub email: String,
    pub domain: String,
    pub reply_to: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// The columns of [`SenderViewRow`], from `senders` joined with `domains`.
macro_rules! sender_view_columns {
    () => {
        (
            senders::email,
            domains::name,
            senders::reply_to,
            senders::active,
            senders::created_at,
        )
    };
}

pub(crate) use sender_view_columns;

impl From<SenderViewRow> for SenderView {
    fn from(row: SenderViewRow) -> Self {
        Self {
            email: row.email,
            domain: row.domain,
            reply_to: row.reply_to,
            active: row.active,
            created_at: row.created_at,
        }
    }
}

/// A time read from SQLite by chrono's RFC 3339 parser, which reads the text diesel
/// writes (`2026-12-07 20:42:53.123456+00:00`) in one pass; diesel's own reading
/// tries a list of `strftime` formats, each parsed anew, and took a tenth of the
/// server's CPU reading a domain of 1,000 senders. Any other form a value may have
/// is read as diesel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub(crate) struct Stamp(pub(crate) DateTime<Utc>);

impl diesel::deserialize::FromSql<diesel::sql_types::TimestamptzSqlite, diesel::sqlite::Sqlite>
    for Stamp
{
    fn from_sql(
        mut value: diesel::sqlite::SqliteValue<'_, '_, '_>,
    ) -> diesel::deserialize::Result<Self> {
        if value.value_type() == Some(diesel::sqlite::SqliteType::Text)
            && let Ok(at) = DateTime::parse_from_rfc3339(value.read_text())
        {
            return Ok(Self(at.with_timezone(&Utc)));
        }
        <DateTime<Utc> as diesel::deserialize::FromSql<
            diesel::sql_types::TimestamptzSqlite,
            diesel::sqlite::Sqlite,
        >>::from_sql(value)
        .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{Integer, TimestamptzSqlite};
    use diesel::{Connection as _, QueryableByName, RunQueryDsl as _, SqliteConnection};

    use super::*;

    #[derive(QueryableByName)]
    struct Both {
        #[diesel(sql_type = Integer)]
        n: i32,
        #[diesel(sql_type = TimestamptzSqlite)]
        diesel: DateTime<Utc>,
        #[diesel(sql_type = TimestamptzSqlite)]
        stamp: Stamp,
    }

    #[test]
    fn a_stamp_reads_every_stored_form_as_diesel_does() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE t (n INTEGER, at TIMESTAMP)")
            .execute(&mut c)
            .unwrap();
        // What diesel writes (and so every row the service stored), then forms a
        // hand-written row may have: no fraction, `T` and `Z`, another offset, no
        // offset at all (read as UTC).
        let written = Utc::now();
        diesel::sql_query("INSERT INTO t (n, at) VALUES (0, ?)")
            .bind::<TimestamptzSqlite, _>(written)
            .execute(&mut c)
            .unwrap();
        let forms = [
            "2026-12-07 20:42:53+00:00",
            "2026-12-07T20:42:53Z",
            "2026-12-07 21:42:53.5+01:00",
            "2026-12-07 20:42:53",
            "2026-12-07 20:42:53.25",
        ];
        for (n, form) in forms.iter().enumerate() {
            diesel::sql_query("INSERT INTO t (n, at) VALUES (?, ?)")
                .bind::<Integer, _>(i32::try_from(n + 1).unwrap())
                .bind::<diesel::sql_types::Text, _>(*form)
                .execute(&mut c)
                .unwrap();
        }
        let rows: Vec<Both> =
            diesel::sql_query("SELECT n, at AS diesel, at AS stamp FROM t ORDER BY n")
                .load(&mut c)
                .unwrap();

        assert_eq!(rows.len(), forms.len() + 1);
        assert_eq!(rows[0].stamp, Stamp(written));
        for row in &rows {
            assert_eq!(row.stamp, Stamp(row.diesel), "row {}", row.n);
        }
    }
}
