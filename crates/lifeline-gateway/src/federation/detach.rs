//! A legacy client's routed request outlives the client's connection. 2025-11-25 `basic/transports` §Sending
//! Messages to the Server 6: "Disconnection SHOULD NOT be interpreted as the client cancelling its request"; "To
//! cancel, the client SHOULD explicitly send an MCP `CancelledNotification`". The gateway is the server its legacy
//! clients see, so when one closes its connection before its answer, the exchange with the federated server goes
//! on to its end in a task of its own, bounded as an inline one is (`upstream_timeout` per upstream exchange; a
//! session that expired is made again once). Its answer is then discarded, counted
//! (`lifeline_gateway_federation_orphaned_requests_total{result="discarded"}`) and logged. It matters at a modern
//! (2026-07-28) server, for which the request's connection closing *is* the cancellation
//! (`basic/patterns/cancellation` §Transport-Specific Cancellation): dropping the exchange with the client would
//! cancel there what the legacy client never cancelled. Its `notifications/cancelled`, on any connection of its
//! session, still cancels at once: the request stays open to [`Federation::cancel`] while it runs, client gone or
//! not (the `Open` guard of `route.rs` lives in the task).
//!
//! Detached: the requests routed to one server (`tools/call`, `prompts/get`, `resources/read`,
//! `completion/complete`: `stream.rs`). A merged list, `logging/setLevel` and `resources/subscribe` still end with
//! their client's connection. A modern client's request is never detached: its closed stream is its cancellation
//! (`route.rs` `Open`).
//!
//! Bounded: at most `max_sessions` orphaned exchanges run at once (the bound the operator gave the federation's
//! client state, reused). When a client leaves with that many running, its request is dropped with it, as a
//! modern client's would be (a modern server takes that as a cancellation, a legacy one sees the connection close),
//! counted as `result="dropped"` and logged as a warning. A request whose client stays costs one task and one
//! channel more than an inline exchange, and no permit.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::stream::Work;
use super::{error, lock, Answer, Federation};
use crate::body::code;
use crate::metrics::Metrics;

/// The slot an orphaned exchange's permit goes into when its client leaves; emptied when the exchange ends.
type Slot = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// The client's side of a detached exchange: the answer's way back, and what to do if the client leaves first.
struct Waiting {
    answer: oneshot::Receiver<Answer>,
    task: JoinHandle<()>,
    slot: Slot,
    orphans: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    method: String,
    answered: bool,
}

impl Federation {
    /// `work`, the exchange of the legacy client's request `method` `id`, run in a task of its own; the future
    /// returned waits for its answer, and when dropped first (the client left) leaves the task running, within the
    /// bound on orphaned exchanges (see the module docs).
    pub(super) fn detach(&self, method: &str, id: &Value, work: Work) -> Work {
        let (tx, rx) = oneshot::channel();
        let slot = Slot::default();
        let (held, metrics, name) = (
            Arc::clone(&slot),
            Arc::clone(&self.metrics),
            method.to_owned(),
        );
        let task = tokio::spawn(async move {
            let answer = work.await;
            if tx.send(answer).is_err() {
                // The client left: its permit (put in the slot when it did) is free again from here.
                drop(lock(&held).take());
                metrics.federation.orphaned("discarded");
                tracing::info!(mcp.method = %name, "A legacy client left before its answer; the request ran to its end and the answer was discarded.");
            }
        });
        let mut waiting = Waiting {
            answer: rx,
            task,
            slot,
            orphans: Arc::clone(&self.orphans),
            metrics: Arc::clone(&self.metrics),
            method: method.to_owned(),
            answered: false,
        };
        let id = id.clone();
        Box::pin(async move {
            let answer = waiting.wait().await;
            // The task ends by sending the answer; it cannot fail to, short of a panic in the exchange.
            answer.unwrap_or_else(|_| {
                Answer::Built(error(
                    &id,
                    code::SERVER_ERROR,
                    "Internal error",
                    Value::Null,
                ))
            })
        })
    }
}

impl Waiting {
    /// The answer; the client is still here when it comes.
    async fn wait(&mut self) -> Result<Answer, oneshot::error::RecvError> {
        let answer = (&mut self.answer).await;
        self.answered = true;
        answer
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // Before the receiver goes (after this): the task finds the permit in the slot when its send fails.
        match Arc::clone(&self.orphans).try_acquire_owned() {
            Ok(permit) => *lock(&self.slot) = Some(permit),
            Err(_) => {
                self.task.abort();
                self.metrics.federation.orphaned("dropped");
                tracing::warn!(mcp.method = %self.method, "A legacy client left before its answer with max_sessions orphaned requests running already; its request is dropped (a modern server takes that as a cancellation).");
            }
        }
    }
}
