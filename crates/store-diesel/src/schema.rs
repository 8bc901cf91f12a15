//! Table definitions, once per backend. The tables are identical but for the
//! timestamp type (`TIMESTAMPTZ` in PostgreSQL, RFC 3339 text in SQLite), so one
//! macro writes both and each module supplies its own `Moment`.

macro_rules! tables {
    () => {
        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            organizations (id) {
                id -> Text,
                name -> Text,
                created_at -> Moment,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            api_tokens (id) {
                id -> BigInt,
                organization_id -> Text,
                access_token_hash -> Binary,
                secret_hash -> Binary,
                created_at -> Moment,
                revoked_at -> Nullable<Moment>,
                token_format -> SmallInt,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            service_keys (name) {
                name -> Text,
                secret -> Binary,
                created_at -> Moment,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            domains (id) {
                id -> BigInt,
                organization_id -> Text,
                name -> Text,
                inbound_enabled -> Bool,
                created_at -> Moment,
                updated_at -> Moment,
                status -> Text,
                verified_at -> Nullable<Moment>,
                last_checked_at -> Nullable<Moment>,
                next_check_at -> Nullable<Moment>,
                check_lease_until -> Nullable<Moment>,
                failed_checks -> Integer,
                last_check -> Nullable<Text>,
                zone -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            dkim_keys (id) {
                id -> BigInt,
                domain_id -> BigInt,
                selector -> Text,
                state -> Text,
                public_key -> Text,
                private_key_sealed -> Nullable<Binary>,
                created_at -> Moment,
                activated_at -> Nullable<Moment>,
                retired_at -> Nullable<Moment>,
                revoked_at -> Nullable<Moment>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            domain_claims (id) {
                id -> BigInt,
                domain_id -> BigInt,
                organization_id -> Text,
                token -> Text,
                created_at -> Moment,
                expires_at -> Moment,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            events (id) {
                id -> BigInt,
                organization_id -> Text,
                #[sql_name = "type"]
                kind -> Text,
                domain -> Nullable<Text>,
                selector -> Nullable<Text>,
                email -> Nullable<Text>,
                created_at -> Moment,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            senders (id) {
                id -> BigInt,
                organization_id -> Text,
                domain_id -> BigInt,
                email -> Text,
                reply_to -> Nullable<Text>,
                active -> Bool,
                created_at -> Moment,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            webhook_endpoints (id) {
                id -> Text,
                organization_id -> Text,
                url -> Text,
                events -> Nullable<Text>,
                secret_sealed -> Binary,
                created_at -> Moment,
                consecutive_failures -> Integer,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            webhook_deliveries (id) {
                id -> BigInt,
                endpoint_id -> Text,
                organization_id -> Text,
                event_id -> BigInt,
                state -> Text,
                attempts -> Integer,
                next_attempt_at -> Nullable<Moment>,
                lease_until -> Nullable<Moment>,
                created_at -> Moment,
                completed_at -> Nullable<Moment>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            webhook_attempts (id) {
                id -> BigInt,
                delivery_id -> BigInt,
                attempted_at -> Moment,
                status_code -> Nullable<Integer>,
                error -> Nullable<Text>,
                duration_ms -> Integer,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            idempotency_keys (organization_id, key) {
                organization_id -> Text,
                key -> Text,
                fingerprint -> Binary,
                status -> Nullable<Integer>,
                content_type -> Nullable<Text>,
                body -> Nullable<Binary>,
                created_at -> Moment,
                expires_at -> Moment,
                holder -> Nullable<Binary>,
                lease_until -> Nullable<Moment>,
            }
        }

        diesel::table! {
            domain_sender_counts (domain_id) {
                domain_id -> BigInt,
                sender_count -> BigInt,
            }
        }

        diesel::table! {
            idempotency_usage (organization_id) {
                organization_id -> Text,
                bytes -> BigInt,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;
            use super::Moment;

            live_checks (id) {
                id -> BigInt,
                organization_id -> Text,
                checked_at -> Moment,
            }
        }

        diesel::joinable!(api_tokens -> organizations (organization_id));
        diesel::joinable!(domains -> organizations (organization_id));
        diesel::joinable!(senders -> domains (domain_id));
        diesel::joinable!(dkim_keys -> domains (domain_id));
        diesel::joinable!(events -> organizations (organization_id));
        diesel::joinable!(domain_claims -> domains (domain_id));
        diesel::joinable!(domain_sender_counts -> domains (domain_id));
        diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
        diesel::joinable!(webhook_deliveries -> events (event_id));
        diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
        diesel::allow_tables_to_appear_in_same_query!(
            organizations,
            api_tokens,
            domains,
            senders,
            service_keys,
            dkim_keys,
            domain_claims,
            events,
            webhook_endpoints,
            webhook_deliveries,
            webhook_attempts,
            idempotency_keys,
            idempotency_usage,
            live_checks,
            domain_sender_counts
        );
    };
}

pub(crate) mod pg {
    pub type Moment = diesel::sql_types::Timestamptz;
    tables!();
}

pub(crate) mod sqlite {
    pub type Moment = diesel::sql_types::TimestamptzSqlite;
    tables!();
}
