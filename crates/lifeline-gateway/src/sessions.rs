//! The sessions the gateway tracks: legacy Streamable HTTP sessions minted by the upstream (2025-11-25
//! `basic/transports` §Session Management) and 2024-11-05 HTTP+SSE streams. The table bounds how many exist
//! (`--max-sessions`), knows which are idle, and hands expired ones to the sweeper, which ends them upstream.
//!
//! Memory per session is one map entry: the id (as the upstream minted it, ≤ 256 bytes) plus 24 bytes of
//! state, so 10,000 idle sessions cost well under 10 MiB.
//!
//! **The session's home (the affinity seam).** In front of a pool of replicas, a legacy session lives on the
//! endpoint that minted it, so the table remembers that endpoint ([`EndpointRef`]) beside each id, and the
//! proxy pins every later request of the session there. The mapping is this small interface and nothing else:
//! [`Reservation::commit`] and [`Sessions::adopt`] record a session's home, [`Activity::home`] reads it for a
//! request, [`Sessions::forget`], [`Sessions::take_expired`] and [`Sessions::take_idle`] hand it back with the
//! id ([`Ended`]) so the `DELETE` reaches the right endpoint. Whoever replaces the table's lookup with a
//! session id that carries its own home (a sealed token: endpoint label + upstream id, see
//! `docs/gateway-replicas.md`) changes these and `proxy.rs`'s calls to them; `Pool::find` turns an endpoint's
//! label back into its [`EndpointRef`].
//!
//! With auth on, a session is bound to the principal that created it (or first used it, for one the gateway
//! adopted): a request of another principal carrying its id is answered as for an unknown session (2025-11-25
//! `security_best_practices` §Session Hijacking, "bind session IDs to user-specific information"; 2026-07-28 keeps
//! the rule for its state handles, `<user_id>:<handle>`, §State Handle Hijacking). The
//! owner is kept as a keyed 64-bit hash of the subject, not the subject.
//!
//! **Sealed session ids** (with `session_key_file`; `seal.rs`, `recover.rs`): the client sees a sealed token
//! holding the session's endpoint, the upstream's id and the client's `initialize` params, never the upstream's
//! id. [`Sessions::unseal`] opens the token of a request and puts the upstream id in its place,
//! [`Sessions::route`] sends it to the endpoint the table or the token names, [`Sessions::seal_response`] puts
//! the token back on the answer, and [`forward`] re-initializes a session whose endpoint is gone on a healthy
//! one (transparent recovery). The table stays keyed by upstream ids; a recovered session is one more entry
//! (its new upstream id and endpoint) plus a `moved` link from the token's upstream id to it, so each gateway
//! replica holds at most one upstream session per client session, ended like any other when idle.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};

use crate::config::sessions::SessionKeys;
use crate::metrics::Metrics;
use crate::proxy::SESSION_HEADER;
use crate::upstream::{EndpointRef, Route, Upstream};

mod recover;
pub(crate) mod seal;

pub(crate) use recover::forward;
use seal::{Sealed, Sealer};

/// Longest session id the gateway tracks; the spec only bounds the alphabet (visible ASCII), so this bound is
/// ours. Longer ids are forwarded but not tracked.
pub(crate) const MAX_SESSION_ID_BYTES: usize = 256;

/// The `result` labels of `lifeline_gateway_session_recoveries_total` (a bounded set), counted by [`forward`]:
///
/// - `recovered`: a sealed session whose upstream was gone (refused connection, 404, a 400 saying the session
///   is unknown: `recover.rs`) was re-initialized on
///   another endpoint and its request replayed there: the client saw nothing;
/// - `failed`: its upstream was gone and no endpoint took the re-initialization (or it carried no
///   `initialize` params): the client got the first attempt's answer (502, or the 404 that makes it
///   re-initialize: a session loss);
/// - `in_flight_error`: a request that may have run on an upstream that broke (a timeout, a connection broken
///   before the answer's head) was answered with a JSON-RPC error carrying its `id`, never replayed (an SSE
///   answer cut after its head is not counted: its status was relayed already).
pub(crate) const RECOVERY_RESULTS: [&str; 3] = ["recovered", "failed", "in_flight_error"];

/// The session table.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Box<str>, Entry>>,
    /// Slots reserved by `initialize` requests in flight.
    reserved: AtomicUsize,
    max: usize,
    idle_ttl: Duration,
    epoch: Instant,
    /// Keys of the owner hash, random per process.
    owner_keys: std::collections::hash_map::RandomState,
    /// Seals client-facing ids (`session_key_file`); `None`: ids pass through.
    sealer: Option<Sealer>,
    /// Sessions recovered on this replica: the upstream id inside the client's token → the upstream session
    /// that replaced it (at most one per client session; dropped with that session).
    moved: Mutex<HashMap<Box<str>, Moved>>,
    /// One recovery at a time per client session (keyed by the token's upstream id).
    recovering: Mutex<HashMap<Box<str>, Arc<tokio::sync::Mutex<()>>>>,
    /// Counts recoveries ([`RECOVERY_RESULTS`]); `None` in unit tests.
    metrics: Option<Arc<Metrics>>,
}

/// Where a recovered session lives now.
#[derive(Debug, Clone)]
struct Moved {
    id: Box<str>,
    home: Option<EndpointRef>,
}

/// A request's sealed session id, opened ([`Sessions::unseal`]).
#[derive(Debug, Clone)]
pub(crate) struct Unsealed {
    /// The token as the client sent it (put back on every answer: the client's id never changes).
    pub(crate) token: HeaderValue,
    /// What it holds.
    pub(crate) sealed: Sealed,
    /// The upstream id the request now carries: the token's, or the one that replaced it here.
    pub(crate) current: Box<str>,
    /// The endpoint holding `current` when the session was recovered on this replica.
    moved_home: Option<EndpointRef>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Milliseconds since `epoch` of the last activity.
    last_seen_ms: u64,
    /// Requests and streams of this session in flight.
    active: u32,
    /// The pool endpoint that minted the session (`None` for a stdio upstream).
    home: Option<EndpointRef>,
    /// The owner's hash (`Sessions::owner`); 0: not bound (auth off).
    owner: u64,
    /// With sealed ids, a session every gateway replica may serve (its client's token names it): no replica can
    /// tell that its client went idle, so the sweeper and the drain forget it without ending it upstream (the
    /// upstream's own expiry and the client's `DELETE` end it). False for a session recovered on this replica
    /// (private to it: ended here like any other) and without a key file.
    shared: bool,
}

/// A session taken out of the table, for its `DELETE` upstream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ended {
    /// The session id.
    pub(crate) id: Box<str>,
    /// The endpoint that holds it.
    pub(crate) home: Option<EndpointRef>,
}

/// A slot held for a session being created; dropped without [`Reservation::commit`], it frees the slot.
#[derive(Debug)]
pub(crate) struct Reservation {
    table: Arc<Sessions>,
}

/// Marks a session busy until dropped (then idle from that moment on).
#[derive(Debug)]
pub(crate) struct Activity {
    table: Arc<Sessions>,
    id: Box<str>,
    home: Option<EndpointRef>,
}

impl Sessions {
    pub(crate) fn new(max: usize, idle_ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            reserved: AtomicUsize::new(0),
            max,
            idle_ttl,
            epoch: Instant::now(),
            owner_keys: std::collections::hash_map::RandomState::new(),
            sealer: None,
            moved: Mutex::new(HashMap::new()),
            recovering: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Counts recoveries in `metrics` (`lifeline_gateway_session_recoveries_total`).
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Sessions {
        self.metrics = Some(metrics);
        self
    }

    /// Counts one recovery outcome (one of [`RECOVERY_RESULTS`]).
    fn count_recovery(&self, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.session_recovery(result);
        }
    }

    /// Whether client-facing ids are sealed (`session_key_file`): then every session is shared by the gateway
    /// replicas, and a draining replica keeps serving the sessions its clients still send it (`proxy.rs`).
    pub(crate) fn sealed(&self) -> bool {
        self.sealer.is_some()
    }

    /// Seals client-facing session ids with `keys` (`session_key_file`); `None` leaves ids as the upstream
    /// minted them.
    pub(crate) fn with_keys(mut self, keys: Option<&SessionKeys>) -> Sessions {
        self.sealer = keys.map(Sealer::new);
        self
    }

    fn moved(&self) -> MutexGuard<'_, HashMap<Box<str>, Moved>> {
        self.moved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the sealed session id of a request and replaces it in `headers` with the upstream's id (the one
    /// that replaced it, for a session recovered here). `Ok(None)`: no key file, or no session id.
    ///
    /// Errors: a token no key opens (another key, another principal, tampered, not a token): the caller
    /// answers 404, and the client re-initializes (2025-11-25 `basic/transports` §Session Management 4).
    pub(crate) fn unseal(
        &self,
        headers: &mut HeaderMap,
        subject: Option<&str>,
    ) -> Result<Option<Unsealed>, ()> {
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        let Some(token) = headers.get(&SESSION_HEADER) else {
            return Ok(None);
        };
        let sealed = token
            .to_str()
            .ok()
            .and_then(|t| sealer.open(t, subject))
            .ok_or(())?;
        let moved = self.moved().get(sealed.upstream_id.as_str()).cloned();
        let (current, moved_home) = match moved {
            Some(m) => (m.id, m.home),
            None => (sealed.upstream_id.as_str().into(), None),
        };
        let value = HeaderValue::from_str(&current).map_err(|_| ())?;
        let token = headers.insert(SESSION_HEADER, value).ok_or(())?;
        Ok(Some(Unsealed {
            token,
            sealed,
            current,
            moved_home,
        }))
    }

    /// Where a request of a session goes: the endpoint the table knows for it, else the one it was recovered
    /// onto here, else the one its token names (when still in the pool), else the balancer's choice.
    pub(crate) fn route(
        &self,
        known: Option<&EndpointRef>,
        unsealed: Option<&Unsealed>,
        upstream: &Upstream,
    ) -> Route {
        if let Some(home) = known {
            return Route::Pinned(home.clone());
        }
        let Some(u) = unsealed else {
            return Route::Balanced;
        };
        if let Some(home) = &u.moved_home {
            return Route::Pinned(home.clone());
        }
        Route::to(
            upstream
                .pool()
                .and_then(|p| p.find(&u.sealed.endpoint))
                .as_ref(),
        )
    }

    /// Puts the client-facing id on an answer that carries the upstream's: a new token for the answer to an
    /// `initialize` (`init_params`: the request's `params` as JSON text; `served`: the endpoint that answered),
    /// else the client's own token. Nothing without a key file. An id that cannot be sealed (over
    /// `seal::MAX_FIELD_BYTES`) is removed, so the client never holds an id no gateway replica can route.
    pub(crate) fn seal_response(
        &self,
        headers: &mut HeaderMap,
        unsealed: Option<&Unsealed>,
        init_params: Option<String>,
        served: Option<&EndpointRef>,
        subject: Option<&str>,
    ) {
        let Some(sealer) = &self.sealer else {
            return;
        };
        let Some(upstream_id) = headers.get(&SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if let (Some(u), None) = (unsealed, &init_params) {
            headers.insert(SESSION_HEADER, u.token.clone());
            return;
        }
        let sealed = Sealed {
            endpoint: served.map(|e| e.label().to_owned()).unwrap_or_default(),
            upstream_id: upstream_id.to_owned(),
            init_params,
        };
        match sealer
            .seal(&sealed, subject)
            .ok()
            .and_then(|t| HeaderValue::from_str(&t).ok())
        {
            Some(token) => {
                headers.insert(SESSION_HEADER, token);
            }
            None => {
                tracing::warn!(
                    "An upstream session id could not be sealed; removed from the answer."
                );
                headers.remove(SESSION_HEADER);
            }
        }
    }

    /// The `params` of an `initialize` request body as JSON text, for its sealed id; `None` without a key
    /// file, for any other request, or without params.
    pub(crate) fn init_params(&self, is_initialize: bool, body: &[u8]) -> Option<String> {
        if self.sealer.is_none() || !is_initialize {
            return None;
        }
        let mut init: serde_json::Value = serde_json::from_slice(body).ok()?;
        let params = init.get_mut("params")?.take();
        Some(params.to_string())
    }

    /// Records that the session whose token holds `original` now lives as `id` on `home` (recovery).
    fn record_move(
        &self,
        original: &str,
        id: &str,
        home: Option<EndpointRef>,
        subject: Option<&str>,
    ) {
        self.forget(original);
        // A session recovered here before and gone since (its endpoint died or drained): forgotten, not ended.
        let before = self.moved().get(original).map(|m| m.id.clone());
        if let Some(gone) = before.filter(|g| **g != *id) {
            let _ = self.lock().remove(&gone);
        }
        let tracked = self.adopt_unchecked(id, home.clone(), subject, true);
        let mut moved = self.moved();
        // Bounded: a link goes with its tracked session; beyond `--max-sessions` (a full table) none is kept, so
        // the session recovers again on its next request.
        if tracked || moved.len() < self.max {
            moved.insert(
                original.into(),
                Moved {
                    id: id.into(),
                    home,
                },
            );
        }
    }

    /// The lock serializing recoveries of the session whose token holds `original`.
    fn recovery_lock(&self, original: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.recovering.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: entries nobody holds are dropped before a new one is added.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(map.entry(original.into()).or_default())
    }

    /// Drops the `moved` links to sessions no longer tracked.
    fn unlink(&self, ended: &[Ended]) {
        if ended.is_empty() {
            return;
        }
        let mut moved = self.moved();
        if moved.is_empty() {
            return;
        }
        moved.retain(|_, m| !ended.iter().any(|e| e.id == m.id));
    }

    /// The owner hash of a principal's subject; 0 without one.
    fn owner(&self, subject: Option<&str>) -> u64 {
        subject.map_or(0, |s| {
            let mut h = self.owner_keys.build_hasher();
            h.write(s.as_bytes());
            h.finish().max(1)
        })
    }

    /// Whether a request of `subject` may use session `id`: the session is not tracked, not bound, or bound to
    /// that subject.
    pub(crate) fn usable_by(&self, id: &str, subject: Option<&str>) -> bool {
        let owner = self.owner(subject);
        self.lock()
            .get(id)
            .is_none_or(|e| e.owner == 0 || e.owner == owner)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // A panic while holding the lock leaves a consistent map (every update is a single insert/remove), so a
        // poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sessions open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Holds a slot for a new session, or `None` when `--max-sessions` are open or reserved.
    pub(crate) fn reserve(self: &Arc<Self>) -> Option<Reservation> {
        let map = self.lock();
        let reserved = self.reserved.load(Ordering::Acquire);
        if map.len() + reserved >= self.max {
            return None;
        }
        self.reserved.fetch_add(1, Ordering::AcqRel);
        Some(Reservation {
            table: Arc::clone(self),
        })
    }

    /// Marks `id` busy; `None` when the gateway does not know the session.
    pub(crate) fn activity(self: &Arc<Self>, id: &str) -> Option<Activity> {
        let now = self.now_ms();
        let mut map = self.lock();
        let entry = map.get_mut(id)?;
        entry.active = entry.active.saturating_add(1);
        entry.last_seen_ms = now;
        Some(Activity {
            table: Arc::clone(self),
            id: id.into(),
            home: entry.home.clone(),
        })
    }

    /// Starts tracking a session the gateway did not see created (the gateway restarted, or the upstream
    /// minted it outside `initialize`), when there is room, with `home` the endpoint that answered for it,
    /// bound to `subject` (the principal whose request used it). Returns whether it is tracked now.
    pub(crate) fn adopt(&self, id: &str, home: Option<EndpointRef>, subject: Option<&str>) -> bool {
        if self.sealer.is_some() && self.moved().contains_key(id) {
            // A session recovered here: its old upstream id is gone for good.
            return false;
        }
        self.adopt_unchecked(id, home, subject, false)
    }

    fn adopt_unchecked(
        &self,
        id: &str,
        home: Option<EndpointRef>,
        subject: Option<&str>,
        recovered: bool,
    ) -> bool {
        if id.len() > MAX_SESSION_ID_BYTES {
            return false;
        }
        let now = self.now_ms();
        let mut map = self.lock();
        if map.contains_key(id) {
            return true;
        }
        if map.len() + self.reserved.load(Ordering::Acquire) >= self.max {
            return false;
        }
        map.insert(
            id.into(),
            Entry {
                last_seen_ms: now,
                active: 0,
                home,
                owner: self.owner(subject),
                shared: self.sealer.is_some() && !recovered,
            },
        );
        true
    }

    /// The endpoint that holds `id`, when the gateway knows the session and its home.
    pub(crate) fn home(&self, id: &str) -> Option<EndpointRef> {
        self.lock().get(id).and_then(|e| e.home.clone())
    }

    /// Stops tracking `id`; returns it with its home when it was tracked.
    /// With sealed ids, a shared session (`Entry::shared`) is forgotten and `None` returned: another gateway
    /// replica may still serve it, so it is not ended upstream from here.
    pub(crate) fn forget(&self, id: &str) -> Option<Ended> {
        let ended = self.lock().remove(id).filter(|e| !e.shared).map(|e| Ended {
            id: id.into(),
            home: e.home,
        });
        if let Some(e) = &ended {
            self.unlink(std::slice::from_ref(e));
        }
        ended
    }

    /// Whether `id` is tracked, and how many of its requests are in flight.
    pub(crate) fn active_count(&self, id: &str) -> Option<u32> {
        self.lock().get(id).map(|e| e.active)
    }

    /// Removes the sessions idle (nothing in flight) for longer than the idle TTL, and returns those to end
    /// upstream (with sealed ids, only the ones recovered here: see `Entry::shared`).
    pub(crate) fn take_expired(&self) -> Vec<Ended> {
        let ttl = self.idle_ttl.as_millis() as u64;
        let now = self.now_ms();
        self.take_where(|e| e.active == 0 && now.saturating_sub(e.last_seen_ms) >= ttl)
    }

    /// Removes every session with nothing in flight, and returns those to end upstream (the drain ends them;
    /// with sealed ids, only the ones recovered here).
    pub(crate) fn take_idle(&self) -> Vec<Ended> {
        self.take_where(|e| e.active == 0)
    }

    fn take_where(&self, pred: impl Fn(&Entry) -> bool) -> Vec<Ended> {
        let mut map = self.lock();
        let ids: Vec<Box<str>> = map
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(k, _)| k.clone())
            .collect();
        let ended: Vec<Ended> = ids
            .into_iter()
            .filter_map(|id| {
                let e = map.remove(&id)?;
                Some((Ended { id, home: e.home }, e.shared))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|(ended, shared)| (!shared).then_some(ended))
            .collect();
        drop(map);
        self.unlink(&ended);
        ended
    }
}

impl Reservation {
    /// Turns the slot into a tracked session whose home is `home` (the endpoint that answered its
    /// `initialize`), owned by `subject` (the principal of the `initialize`, with auth on). Returns false (and
    /// frees the slot) for an id too long to track.
    pub(crate) fn commit(self, id: &str, home: Option<EndpointRef>, subject: Option<&str>) -> bool {
        if id.len() > MAX_SESSION_ID_BYTES {
            return false;
        }
        let now = self.table.now_ms();
        let owner = self.table.owner(subject);
        let mut map = self.table.lock();
        map.insert(
            id.into(),
            Entry {
                last_seen_ms: now,
                active: 0,
                home,
                owner,
                shared: self.table.sealer.is_some(),
            },
        );
        true
    }
}

impl Activity {
    /// The endpoint that holds the session (`None` for a stdio upstream): where its requests go.
    pub(crate) fn home(&self) -> Option<&EndpointRef> {
        self.home.as_ref()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.table.reserved.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let now = self.table.now_ms();
        let mut map = self.table.lock();
        if let Some(entry) = map.get_mut(&*self.id) {
            entry.active = entry.active.saturating_sub(1);
            entry.last_seen_ms = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_bound_the_table() {
        let t = Arc::new(Sessions::new(2, Duration::from_secs(60)));
        let a = t.reserve().expect("slot 1");
        let b = t.reserve().expect("slot 2");
        assert!(t.reserve().is_none(), "two reserved");
        assert!(a.commit("s1", None, None));
        assert!(t.reserve().is_none(), "one open, one reserved");
        drop(b);
        let c = t.reserve().expect("slot freed");
        assert!(c.commit("s2", None, None));
        assert_eq!(t.len(), 2);
        assert!(!t.adopt("s3", None, None), "full");
        assert!(t.forget("s1").is_some());
        assert!(t.adopt("s3", None, None));
        assert!(t.forget("nope").is_none());
    }

    #[test]
    fn busy_sessions_never_expire_and_idle_ones_do() {
        let t = Arc::new(Sessions::new(10, Duration::ZERO));
        assert!(t.adopt("busy", None, None));
        assert!(t.adopt("idle", None, None));
        let act = t.activity("busy").expect("known");
        assert_eq!(t.active_count("busy"), Some(1));
        let expired = t.take_expired();
        let ids: Vec<Box<str>> = expired.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![Box::<str>::from("idle")]);
        drop(act);
        assert_eq!(t.active_count("busy"), Some(0));
        let idle: Vec<Box<str>> = t.take_idle().into_iter().map(|e| e.id).collect();
        assert_eq!(idle, vec![Box::<str>::from("busy")]);
        assert_eq!(t.len(), 0);
        assert!(t.activity("busy").is_none());
    }

    #[test]
    fn sessions_are_bound_to_their_principal() {
        let t = Arc::new(Sessions::new(10, Duration::from_secs(60)));
        assert!(t.reserve().expect("slot").commit("a", None, Some("alice")));
        assert!(t.usable_by("a", Some("alice")));
        assert!(!t.usable_by("a", Some("mallory")));
        assert!(!t.usable_by("a", None));
        assert!(t.adopt("b", None, None));
        assert!(t.usable_by("b", Some("anyone")), "unbound without auth");
        assert!(
            t.usable_by("unknown", Some("anyone")),
            "not tracked: the upstream decides"
        );
        assert!(t.adopt("c", None, Some("bob")));
        assert!(!t.usable_by("c", Some("alice")));
    }

    #[test]
    fn with_sealed_ids_only_recovered_sessions_are_ended_here() {
        let keys = SessionKeys {
            path: "/k".into(),
            current: [1; 32],
            previous: None,
        };
        let t = Arc::new(Sessions::new(10, Duration::ZERO).with_keys(Some(&keys)));
        assert!(t.reserve().expect("slot").commit("minted", None, None));
        assert!(t.adopt("seen", None, None));
        t.record_move("lost", "recovered", None, None);
        assert!(!t.adopt("lost", None, None), "a moved id never comes back");
        let ended: Vec<Box<str>> = t.take_expired().into_iter().map(|e| e.id).collect();
        assert_eq!(ended, vec![Box::<str>::from("recovered")]);
        assert_eq!(t.len(), 0, "the shared ones are forgotten, not ended");
        assert!(t.moved().is_empty(), "the link went with its session");
    }

    #[test]
    fn overlong_ids_are_not_tracked() {
        let t = Arc::new(Sessions::new(10, Duration::from_secs(1)));
        let long = "x".repeat(MAX_SESSION_ID_BYTES + 1);
        assert!(!t.adopt(&long, None, None));
        let r = t.reserve().expect("slot");
        assert!(!r.commit(&long, None, None));
        assert_eq!(t.len(), 0);
        assert!(t.reserve().is_some(), "slot freed");
    }
}
