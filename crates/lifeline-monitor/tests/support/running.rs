//! A monitor running in process for the integration tests: started on 127.0.0.1 port 0 with a given prober,
//! stopped through its `Shutdown` like the binary does. Shared by `flow.rs` and `transactions.rs`.

use std::sync::Arc;
use std::time::Duration;

use lifeline_core::{Phase as StopPhase, Shutdown};
use lifeline_monitor::{Config, Monitor, Prober};

/// A monitor task and the base URL of its web listener.
pub(crate) struct Running {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

/// Starts a monitor with `c` and `prober` as replica `test-replica`.
pub(crate) async fn start(c: Config, prober: Arc<dyn Prober>) -> Running {
    start_as(c, prober, "test-replica").await
}

/// Starts a monitor with `c` and `prober` as replica `replica`.
pub(crate) async fn start_as(c: Config, prober: Arc<dyn Prober>, replica: &str) -> Running {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let m = Monitor::new(c, prober, replica).await.unwrap();
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    let task = tokio::spawn(async move { m.run(l, s).await.unwrap() });
    Running {
        shutdown,
        task,
        base,
    }
}

impl Running {
    /// Moves to `Refusing` and waits (bounded) for the monitor to finish cleanly.
    pub(crate) async fn stop(self) {
        self.shutdown.advance(StopPhase::Refusing);
        tokio::time::timeout(Duration::from_secs(40), self.task)
            .await
            .expect("clean shutdown")
            .unwrap();
    }
}
