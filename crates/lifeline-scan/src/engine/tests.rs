use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lifeline_mcp::{Reason, Verdict};

use super::*;
use crate::testutil::report_with;

/// What the fake prober does for a URL whose path is `/<behaviour>`.
#[derive(Default)]
struct FakeProber {
    delay: Duration,
    calls: Mutex<HashMap<String, u32>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    per_host: Mutex<HashMap<String, (usize, usize)>>,
}

impl FakeProber {
    fn with_delay(delay: Duration) -> FakeProber {
        FakeProber {
            delay,
            ..FakeProber::default()
        }
    }
}

impl Prober for Arc<FakeProber> {
    fn probe(&self, url: &Url) -> impl Future<Output = ProbeReport> + Send {
        let this = Arc::clone(self);
        let url = url.clone();
        async move {
            let call = {
                let mut calls = this.calls.lock().unwrap();
                let n = calls.entry(url.to_string()).or_default();
                *n += 1;
                *n
            };
            let now = this.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            this.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let host = url.host_str().unwrap().to_owned();
            {
                let mut hosts = this.per_host.lock().unwrap();
                let e = hosts.entry(host.clone()).or_default();
                e.0 += 1;
                e.1 = e.1.max(e.0);
            }
            let behaviour = url.path().trim_start_matches('/').to_owned();
            match behaviour.as_str() {
                "hang" => std::future::pending::<()>().await,
                _ => tokio::time::sleep(this.delay).await,
            }
            this.in_flight.fetch_sub(1, Ordering::SeqCst);
            this.per_host.lock().unwrap().get_mut(&host).unwrap().0 -= 1;
            let (verdict, reason) = match behaviour.as_str() {
                "healthy" => (Verdict::Healthy, None),
                "auth" => (Verdict::AuthRequired, Some(Reason::AuthRequired)),
                "broken" => (Verdict::Unhealthy, Some(Reason::NotMcp)),
                "flaky" if call >= 2 => (Verdict::Healthy, None),
                _ => (Verdict::Unhealthy, Some(Reason::ConnectRefused)),
            };
            let mut report = report_with(verdict, reason);
            report.url = url.to_string();
            report
        }
    }

    fn resolve_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

#[derive(Default)]
struct Collect {
    records: Vec<ScanRecord>,
    skipped: Vec<Skipped>,
}

impl RecordSink for Collect {
    fn record(&mut self, record: &ScanRecord) -> std::io::Result<()> {
        self.records.push(record.clone());
        Ok(())
    }
    fn skipped(&mut self, skipped: &Skipped) -> std::io::Result<()> {
        self.skipped.push(skipped.clone());
        Ok(())
    }
}

fn endpoints(
    urls: impl IntoIterator<Item = String>,
) -> mpsc::Receiver<Result<InputEvent, InputError>> {
    let urls: Vec<String> = urls.into_iter().collect();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for u in urls {
            let ep = Endpoint {
                url: Url::parse(&u).unwrap(),
                name: None,
            };
            if tx.send(Ok(InputEvent::Endpoint(ep))).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn opts() -> ScanOptions {
    ScanOptions {
        allow_private: true,
        attempt_spacing: Duration::from_millis(10),
        ..ScanOptions::default()
    }
}

fn count(records: &[ScanRecord], c: Category) -> usize {
    records.iter().filter(|r| r.category == c).count()
}

#[tokio::test]
async fn global_cap_is_respected_and_every_endpoint_reported_once() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(20)));
    let urls = (0..60).map(|i| format!("http://h{i}.test/healthy"));
    let mut sink = Collect::default();
    let options = ScanOptions {
        concurrency: 5,
        ..opts()
    };
    let progress = Arc::new(Progress::default());
    let run = scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::clone(&progress),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert_eq!(run.finished, 60);
    assert!(!run.is_partial());
    assert_eq!(sink.records.len(), 60);
    assert_eq!(prober.max_in_flight.load(Ordering::SeqCst), 5);
    let snap = progress.snapshot();
    assert_eq!((snap.done, snap.total, snap.in_flight), (60, Some(60), 0));
    assert_eq!(snap.by_category[Category::Healthy.index()], 60);
}

#[tokio::test]
async fn per_host_cap_is_respected() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(10)));
    let urls = (0..30)
        .map(|i| format!("http://same.test/healthy?n={i}"))
        .chain((0..10).map(|i| format!("http://other{i}.test/healthy")));
    let mut sink = Collect::default();
    let options = ScanOptions {
        concurrency: 50,
        per_host: 2,
        ..opts()
    };
    scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::new(Progress::default()),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert_eq!(sink.records.len(), 40);
    assert_eq!(prober.per_host.lock().unwrap()["same.test"].1, 2);
}

#[tokio::test]
async fn attempts_keep_the_best_result() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let urls = [
        "http://a.test/flaky",
        "http://b.test/dead",
        "http://c.test/healthy",
        "http://d.test/auth",
    ]
    .map(String::from);
    let mut sink = Collect::default();
    let options = ScanOptions {
        attempts: 3,
        ..opts()
    };
    scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::new(Progress::default()),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    let by_url: HashMap<String, &ScanRecord> = sink
        .records
        .iter()
        .map(|r| (r.url.to_string(), r))
        .collect();
    let flaky = by_url["http://a.test/flaky"];
    assert_eq!((flaky.category, flaky.attempts), (Category::Healthy, 2));
    let dead = by_url["http://b.test/dead"];
    assert_eq!((dead.category, dead.attempts), (Category::Dead, 3));
    assert_eq!(by_url["http://c.test/healthy"].attempts, 1);
    assert_eq!(by_url["http://d.test/auth"].attempts, 3);
}

#[tokio::test]
async fn private_addresses_are_refused_without_probing() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let urls = [
        "http://127.0.0.1:9/healthy",
        "http://localhost:9/healthy",
        "http://[::1]:9/healthy",
        "http://10.1.2.3/healthy",
    ]
    .map(String::from);
    let mut sink = Collect::default();
    let options = ScanOptions {
        allow_private: false,
        ..opts()
    };
    scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::new(Progress::default()),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert_eq!(count(&sink.records, Category::RefusedPrivate), 4);
    assert!(sink.records.iter().all(|r| r.attempts == 0));
    assert!(prober.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unresolvable_host_is_dead_without_probing() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let mut sink = Collect::default();
    let options = ScanOptions {
        allow_private: false,
        ..opts()
    };
    let urls = ["http://nothing-here.invalid/healthy".to_owned()];
    scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::new(Progress::default()),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert_eq!(sink.records[0].category, Category::Dead);
    assert_eq!(
        sink.records[0].report().unwrap().reason,
        Some(Reason::DnsFailed)
    );
    assert!(prober.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn stop_keeps_finished_results_and_abandons_hung_probes_within_the_drain_bound() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    // 5 quick ones first, then hangers that never finish, then more quick ones that must never start.
    let urls = (0..5)
        .map(|i| format!("http://q{i}.test/healthy"))
        .chain((0..8).map(|i| format!("http://hang{i}.test/hang")))
        .chain((0..100).map(|i| format!("http://late{i}.test/healthy")));
    let mut sink = Collect::default();
    let options = ScanOptions {
        concurrency: 8,
        drain: Duration::from_millis(200),
        ..opts()
    };
    let shutdown = Shutdown::new();
    let progress = Arc::new(Progress::default());
    let stopper = {
        let shutdown = shutdown.clone();
        let progress = Arc::clone(&progress);
        let prober = Arc::clone(&prober);
        tokio::spawn(async move {
            // Wait (bounded) until the hangers occupy every slot, then stop.
            let deadline = Instant::now() + Duration::from_secs(10);
            while prober.in_flight.load(Ordering::SeqCst) < 8 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(progress.snapshot().done >= 5);
            shutdown.advance(Phase::Refusing);
        })
    };
    let t0 = Instant::now();
    let run = scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        progress,
        &mut sink,
        shutdown,
    )
    .await
    .unwrap();
    stopper.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(run.interrupted && run.is_partial());
    assert_eq!(run.abandoned, 8);
    assert_eq!(sink.records.len(), 5);
    assert_eq!(run.finished, 5);
    assert!(
        run.not_started > 0,
        "queued endpoints were dropped: {run:?}"
    );
}

#[tokio::test]
async fn forcing_abandons_probes_in_flight_at_once_despite_a_long_drain() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let urls = (0..4).map(|i| format!("http://hang{i}.test/hang"));
    let mut sink = Collect::default();
    let options = ScanOptions {
        concurrency: 4,
        drain: Duration::from_secs(600),
        ..opts()
    };
    let shutdown = Shutdown::new();
    let stopper = {
        let shutdown = shutdown.clone();
        let prober = Arc::clone(&prober);
        tokio::spawn(async move {
            lifeline_testkit::assert_eventually!(
                prober.in_flight.load(Ordering::SeqCst) == 4,
                patience = Duration::from_secs(10)
            );
            shutdown.advance(Phase::Refusing);
            // A second Ctrl-C: the 600 s drain must not be waited for.
            shutdown.abort();
        })
    };
    let t0 = Instant::now();
    let run = scan_events(
        endpoints(urls),
        Arc::clone(&prober),
        &options,
        Arc::new(Progress::default()),
        &mut sink,
        shutdown,
    )
    .await
    .unwrap();
    stopper.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(run.interrupted && run.is_partial());
    assert_eq!(run.abandoned, 4);
    assert!(sink.records.is_empty());
}

#[tokio::test]
async fn input_error_ends_the_scan_with_the_results_so_far() {
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let ep = Endpoint {
            url: Url::parse("http://a.test/healthy").unwrap(),
            name: None,
        };
        tx.send(Ok(InputEvent::Endpoint(ep))).await.unwrap();
        let err = InputError::UnknownShape { path: "x".into() };
        tx.send(Err(err)).await.unwrap();
    });
    let mut sink = Collect::default();
    let run = scan_events(
        rx,
        Arc::clone(&prober),
        &opts(),
        Arc::new(Progress::default()),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert!(run.input_error.is_some());
    // The endpoint read before the error is either finished or counted as not started, never lost silently.
    assert_eq!(run.finished + run.not_started + run.abandoned, 1);
}

#[tokio::test]
async fn scans_a_file_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.txt");
    std::fs::write(
        &path,
        "http://a.test/healthy\nhttp://b.test/broken\nhttp://a.test/healthy\nnope\n",
    )
    .unwrap();
    let prober = Arc::new(FakeProber::with_delay(Duration::from_millis(1)));
    let mut sink = Collect::default();
    let progress = Arc::new(Progress::default());
    let run = scan(
        InputSource::Path(path),
        Arc::clone(&prober),
        &opts(),
        Arc::clone(&progress),
        &mut sink,
        Shutdown::new(),
    )
    .await
    .unwrap();
    assert_eq!(run.finished, 2);
    assert_eq!(sink.skipped.len(), 2);
    assert_eq!(count(&sink.records, Category::Broken), 1);
    assert_eq!(progress.snapshot().total, Some(2));
}
