//! Shard leases and epoch fencing against SQLite and a real PostgreSQL (`DATABASE_URL`, see
//! `store/tests.rs`): acquisition, renewal, the fair share, release, and a former holder's late write rejected.

use std::time::Duration;

use lifeline_mcp::Verdict;
use serde_json::json;

use crate::store::tests::FreshPg;
use crate::store::{
    Fence, HeldShard, IncidentOp, NewAlert, ProbeRow, RecordOp, Store, TargetState, SHARDS,
};

fn failing_op(state: &TargetState, at_ms: i64) -> RecordOp {
    RecordOp {
        state: state.clone(),
        tools_json: None,
        result: ProbeRow::new(at_ms, Verdict::Unhealthy),
        events: vec![],
        incident: IncidentOp::Open {
            at_ms,
            reason: None,
            message: Some("down".into()),
            summary: "down".into(),
            alerts: vec![NewAlert {
                provider: "hook".into(),
                due_ms: at_ms,
                context: json!({}),
            }],
        },
    }
}

async fn shard_suite(store: Store) {
    let ttl = Duration::from_secs(30);
    let all = i64::from(SHARDS);
    // One replica alive: it may take everything.
    assert_eq!(store.heartbeat_replica("r1", ttl).await.unwrap(), 1);
    let r1 = store.acquire_shards("r1", all, ttl).await.unwrap();
    assert_eq!(r1.len(), 128);
    assert!(r1.iter().all(|h| h.epoch == 1));
    // Nothing left for a second one; renewals keep the epoch.
    assert_eq!(store.heartbeat_replica("r2", ttl).await.unwrap(), 2);
    assert!(store
        .acquire_shards("r2", 64, ttl)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.renew_shards("r1", ttl).await.unwrap(), r1);
    assert!(store.renew_shards("r2", ttl).await.unwrap().is_empty());

    // r1 gives back half (its fair share is 64 now); r2 takes them with the epoch bumped.
    for h in &r1[64..] {
        assert_eq!(store.release_shards("r1", Some(h.shard)).await.unwrap(), 1);
    }
    let r2 = store.acquire_shards("r2", 64, ttl).await.unwrap();
    assert_eq!(r2.len(), 64);
    assert!(r2.iter().all(|h| h.shard >= 64 && h.epoch == 2));
    assert_eq!(store.renew_shards("r1", ttl).await.unwrap().len(), 64);

    // Fencing: r1 probed target `t` (in a shard now r2's) under epoch 1; its late write is rejected whole.
    let ids = store
        .sync_targets(&[("t".into(), "http://t/mcp".into())], 1_000)
        .await
        .unwrap();
    let shard = i64::from(crate::store::shard_of("t"));
    let state = TargetState {
        id: ids[0].1,
        name: "t".into(),
        ..TargetState::default()
    };
    let (owner_old, owner_new, epoch_new) = if shard >= 64 {
        ("r1", "r2", 2)
    } else {
        ("r2", "r1", 1)
    };
    let stale = HeldShard {
        shard,
        epoch: if shard >= 64 { 1 } else { 2 },
    };
    let late = store
        .record_fenced(
            &[failing_op(&state, 2_000)],
            Some(Fence {
                owner: owner_old,
                terms: &[stale],
            }),
        )
        .await
        .unwrap();
    assert_eq!(late.rejected, [true]);
    assert_eq!(late.opened, [None]);
    assert!(store
        .results(state.id, 0, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store.alert_counts().await.unwrap().is_empty(),
        "no page from a late write"
    );

    // The holder's write under its epoch commits, result, incident and alert together.
    let current = HeldShard {
        shard,
        epoch: epoch_new,
    };
    let ok = store
        .record_fenced(
            &[failing_op(&state, 3_000)],
            Some(Fence {
                owner: owner_new,
                terms: &[current],
            }),
        )
        .await
        .unwrap();
    assert_eq!(ok.rejected, [false]);
    assert!(ok.opened[0].is_some());
    assert_eq!(
        store
            .results(state.id, 0, i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.alert_counts().await.unwrap().len(), 1);

    // A graceful stop releases everything at once; the other replica takes it all with new epochs.
    store.release_shards("r1", None).await.unwrap();
    store.forget_replica("r1").await.unwrap();
    assert_eq!(store.heartbeat_replica("r2", ttl).await.unwrap(), 1);
    let rest = store.acquire_shards("r2", 64, ttl).await.unwrap();
    assert_eq!(rest.len(), 64);
    assert!(rest.iter().all(|h| h.shard < 64 && h.epoch == 2));
    assert_eq!(store.renew_shards("r2", ttl).await.unwrap().len(), 128);
    assert_eq!(
        store.other_live_replicas("r2").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(store.other_live_replicas("r3").await.unwrap(), ["r2"]);

    // Expiry: a lease past its ttl is neither renewable nor kept; anyone may take it (epoch + 1).
    let short = Duration::from_millis(1);
    store.release_shards("r2", None).await.unwrap();
    let tiny = store.acquire_shards("r2", 1, short).await.unwrap();
    assert_eq!(tiny.len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let renewed = store.renew_shards("r2", short).await.unwrap();
        if renewed.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a 1 ms lease never expired"
        );
        tokio::task::yield_now().await;
    }
    let taken = store.acquire_shards("r3", 1, ttl).await.unwrap();
    assert_eq!(taken[0].shard, tiny[0].shard);
    assert_eq!(taken[0].epoch, tiny[0].epoch + 1);
}

#[tokio::test]
async fn shard_leases_and_fencing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    shard_suite(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn shard_leases_and_fencing_postgres() {
    let Some(db) = FreshPg::create("shards").await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    shard_suite(store.clone()).await;
    store.close().await;
    db.drop().await;
}
