//! The probe agents' region results (issue 14, "Regions"; migration 0006 `region_results`).

use super::{with_pool, Store, StoreError};
use crate::agent::RegionResult;

impl Store {
    /// Writes region results in one transaction, by target name; a result whose target is not in `targets`
    /// writes nothing, and one already stored (same target, region, probe time and attempt: a re-sent push)
    /// is ignored. Returns the rows written.
    ///
    /// Errors: [`StoreError`] when the database fails (nothing is written).
    pub async fn record_region_results(&self, rows: &[RegionResult]) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut written = 0;
            for r in rows {
                written += sqlx::query(
                    "INSERT INTO region_results (target_id, region, agent, probed_ms, received_ms, attempt, up, \
                     latency_ms, error) SELECT id, $2, $3, $4, $5, $6, $7, $8, $9 FROM targets WHERE name = $1 \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&r.result.target)
                .bind(&r.region)
                .bind(&r.agent)
                .bind(r.result.probed_at_ms)
                .bind(r.received_ms)
                .bind(i64::from(r.result.attempt))
                .bind(i64::from(r.result.up))
                .bind(i64::try_from(r.result.latency_ms).unwrap_or(i64::MAX))
                .bind(r.result.error.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(written)
        })
    }

    /// The number of stored region results of target `name` probed in `[from_ms, to_ms)`.
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn count_region_results(
        &self,
        name: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM region_results r JOIN targets t ON t.id = r.target_id \
                 WHERE t.name = $1 AND r.probed_ms >= $2 AND r.probed_ms < $3",
            )
            .bind(name)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(pool)
            .await?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentResult;

    async fn suite(store: Store) {
        // Unique per run: the PostgreSQL database outlives a test run.
        let name = format!("region-{}", crate::scheduler::now_ms());
        store
            .sync_targets(&[(name.clone(), "http://127.0.0.1:9/mcp".into())], 1)
            .await
            .unwrap();
        let row = |target: &str| RegionResult {
            region: "eu-west".into(),
            agent: "eu-1".into(),
            received_ms: 2_000,
            result: AgentResult {
                target: target.into(),
                probed_at_ms: 1_000,
                attempt: 0,
                up: false,
                latency_ms: 5,
                error: Some("refused".into()),
            },
        };
        assert_eq!(store.record_region_results(&[row(&name)]).await.unwrap(), 1);
        // A re-sent push is idempotent; an unknown target writes nothing.
        assert_eq!(
            store
                .record_region_results(&[row(&name), row("nobody")])
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store.count_region_results(&name, 0, 10_000).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn region_results_are_stored_once_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        suite(Store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn region_results_are_stored_once_postgres() {
        let Some(url) = crate::store::tests::postgres_url() else {
            return;
        };
        suite(Store::connect(&url).await.unwrap()).await;
    }
}
