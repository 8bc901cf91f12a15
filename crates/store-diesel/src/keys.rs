//! DKIM key rows written the same way by several units of work: a domain's first (or
//! claimed) active key, and the destruction of all of a domain's keys.

/// Inserts `$key` (a `&DkimKey`) as the active key of domain `$domain_id`, created and
/// activated at `$at`, on `$conn`. Evaluates to `Result<usize, diesel::result::Error>`.
/// Expands inside a `with_conn!`/`in_transaction!` body.
macro_rules! insert_active_key {
    ($conn:ident, $domain_id:expr, $key:expr, $at:expr) => {{
        let key: &domain_core::DkimKey = $key;
        let at: chrono::DateTime<chrono::Utc> = $at;
        diesel::insert_into(dkim_keys::table)
            .values((
                dkim_keys::domain_id.eq($domain_id),
                dkim_keys::selector.eq(key.selector.as_str()),
                dkim_keys::state.eq(domain_core::lifecycle::KeyState::Active.as_str()),
                dkim_keys::public_key.eq(&key.public_key),
                dkim_keys::private_key_sealed.eq(Some(&key.sealed_private_key.0)),
                dkim_keys::created_at.eq(at),
                dkim_keys::activated_at.eq(Some(at)),
            ))
            .execute(&mut *$conn)
            .await
    }};
}

/// Destroys every key of domain `$domain_id` on `$conn`: the sealed private halves
/// overwritten first (as revoked keys, which the table's check lets go without one),
/// then the rows deleted. Evaluates to `Result<(), diesel::result::Error>`.
macro_rules! destroy_keys {
    ($conn:ident, $domain_id:expr) => {
        async {
            let domain_id: i64 = $domain_id;
            diesel::update(dkim_keys::table.filter(dkim_keys::domain_id.eq(domain_id)))
                .set((
                    dkim_keys::private_key_sealed.eq(None::<Vec<u8>>),
                    dkim_keys::state.eq(domain_core::lifecycle::KeyState::Revoked.as_str()),
                ))
                .execute(&mut *$conn)
                .await?;
            diesel::delete(dkim_keys::table.filter(dkim_keys::domain_id.eq(domain_id)))
                .execute(&mut *$conn)
                .await?;
            Ok::<(), diesel::result::Error>(())
        }
        .await
    };
}

pub(crate) use {destroy_keys, insert_active_key};
