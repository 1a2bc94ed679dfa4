//! The per-host concurrency cap: one semaphore per host with work queued or running, dropped when idle so the
//! map holds only hosts in play (bounded by the scheduler's queue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Semaphores per host key.
pub(crate) struct HostLimiter {
    per_host: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    map: HashMap<String, Arc<Semaphore>>,
    closed: bool,
}

/// A slot on one host; frees the host's entry when the last user leaves.
pub(crate) struct HostPermit<'a> {
    limiter: &'a HostLimiter,
    key: String,
    sem: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl HostLimiter {
    /// A limiter allowing `per_host` (at least 1) concurrent holders per key.
    pub(crate) fn new(per_host: usize) -> HostLimiter {
        HostLimiter {
            per_host: per_host.max(1),
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                closed: false,
            }),
        }
    }

    /// Waits for a slot on `key`; `None` once [`HostLimiter::close`] was called.
    pub(crate) async fn acquire(&self, key: &str) -> Option<HostPermit<'_>> {
        let sem = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.closed {
                return None;
            }
            let per_host = self.per_host;
            Arc::clone(
                inner
                    .map
                    .entry(key.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(per_host))),
            )
        };
        let mut guard = HostPermit {
            limiter: self,
            key: key.to_owned(),
            sem: Arc::clone(&sem),
            permit: None,
        };
        // On a closed semaphore the guard still runs its clean-up when dropped here.
        guard.permit = Some(sem.acquire_owned().await.ok()?);
        Some(guard)
    }

    /// Makes every waiting and future [`HostLimiter::acquire`] return `None`; held permits stay valid.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.closed = true;
        for sem in inner.map.values() {
            sem.close();
        }
    }

    /// Hosts currently tracked (for tests).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut inner = self
            .limiter
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under this lock, so a count of 2 (the map's and ours) means nobody else holds or
        // waits for this host: forget it.
        if Arc::strong_count(&self.sem) == 2 {
            let same = inner
                .map
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.sem));
            if same {
                inner.map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn caps_per_host_and_forgets_idle_hosts() {
        let limiter = HostLimiter::new(2);
        let a1 = limiter.acquire("a").await.unwrap();
        let a2 = limiter.acquire("a").await.unwrap();
        let b1 = limiter.acquire("b").await.unwrap();
        assert_eq!(limiter.tracked(), 2);
        // A third slot on `a` waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("a"))
                .await
                .is_err()
        );
        drop(a1);
        let a3 = tokio::time::timeout(Duration::from_secs(5), limiter.acquire("a"))
            .await
            .unwrap()
            .unwrap();
        drop((a2, a3, b1));
        assert_eq!(limiter.tracked(), 0);
    }

    #[tokio::test]
    async fn close_releases_waiters() {
        let limiter = Arc::new(HostLimiter::new(1));
        let held = limiter.acquire("a").await.unwrap();
        let waiter = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire("a").await.is_none() })
        };
        tokio::task::yield_now().await;
        limiter.close();
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap());
        assert!(limiter.acquire("b").await.is_none());
        drop(held);
        assert_eq!(limiter.tracked(), 0);
    }
}
