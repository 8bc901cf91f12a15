//! The live-check log against real databases (SQLite always, PostgreSQL when
//! configured): an organization's budget holds across two stores on one database
//! (two instances), admissions at once included; a refusal records nothing and says
//! when the oldest check was made; the window slides; another organization's budget
//! is its own, and an organization known only from a dashboard JWT (no row) has one.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain_core::OrganizationId;
use domain_core::ports::lifecycle::LiveCheckLog;

const WINDOW: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_on_one_database_hold_an_organization_to_one_live_check_budget() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        // Whole seconds: both backends keep the time as it was given.
        let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();

        // Sixteen admissions at once, half through each store, on a budget of five.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let target = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                target.take_live_check(&a, now, WINDOW, 5).await.unwrap()
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                None => admitted += 1,
                Some(oldest) => assert_eq!(oldest, now, "{kind:?}"),
            }
        }
        assert_eq!(
            admitted, 5,
            "{kind:?}: exactly the budget, across both stores"
        );

        // Another organization, and one with no row (a dashboard JWT's), are untouched.
        assert_eq!(
            second.take_live_check(&b, now, WINDOW, 5).await.unwrap(),
            None
        );
        let jwt_only = OrganizationId::new("org_only_in_a_jwt");
        for _ in 0..2 {
            assert_eq!(
                store
                    .take_live_check(&jwt_only, now, WINDOW, 2)
                    .await
                    .unwrap(),
                None,
                "{kind:?}"
            );
        }
        assert_eq!(
            store
                .take_live_check(&jwt_only, now, WINDOW, 2)
                .await
                .unwrap(),
            Some(now)
        );

        // The window slides: a minute later the five checks no longer count.
        let later = now + chrono::Duration::seconds(60);
        for _ in 0..5 {
            assert_eq!(
                store.take_live_check(&a, later, WINDOW, 5).await.unwrap(),
                None,
                "{kind:?}"
            );
        }
        assert_eq!(
            second.take_live_check(&a, later, WINDOW, 5).await.unwrap(),
            Some(later),
            "{kind:?}: the five of a minute ago were pruned, these five count"
        );
    });
}
