//! The progress display of `lifeline scan`, on stderr: an indicatif bar on a terminal (done/total, rate, ETA,
//! tallies so far), plain log lines at an interval otherwise. It only reads the engine's [`Progress`] counters.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeline_scan::{Progress, ProgressSnapshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// A bar when stderr is a terminal, log lines otherwise.
    Auto,
    /// Always the bar.
    Bar,
    /// Always log lines.
    Log,
    /// Nothing until the summary.
    None,
}

/// A running display; [`Display::finish`] stops it and clears the bar.
pub(crate) struct Display {
    done: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Display {
    /// Starts the display on its own task.
    pub(crate) fn start(mode: Mode, interval: Duration, progress: Arc<Progress>) -> Display {
        let done = CancellationToken::new();
        let mode = match mode {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Bar,
            Mode::Auto => Mode::Log,
            other => other,
        };
        let task = match mode {
            Mode::Bar => Some(tokio::spawn(bar(progress, done.clone()))),
            Mode::Log => Some(tokio::spawn(log_lines(progress, interval, done.clone()))),
            Mode::None | Mode::Auto => None,
        };
        Display { done, task }
    }

    /// Stops the display (the bar is cleared; the log prints nothing more).
    pub(crate) async fn finish(mut self) {
        self.done.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn bar(progress: Arc<Progress>, done: CancellationToken) {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} ETA {eta}\n  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        let snap = progress.snapshot();
        if let Some(total) = snap.total {
            pb.set_length(total);
        }
        pb.set_position(snap.done);
        pb.set_message(format!("{} | in flight {}", snap.tallies(), snap.in_flight));
    }
    pb.finish_and_clear();
}

async fn log_lines(progress: Arc<Progress>, interval: Duration, done: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        eprintln!("{}", line(&progress.snapshot()));
    }
}

/// One log line: `lifeline scan: 120/2181 (5.5%) in 30s, 4.0/s, ETA 8m 15s, in flight 256; healthy 10 …`.
pub(crate) fn line(s: &ProgressSnapshot) -> String {
    let total = s.total.map_or("?".to_owned(), |t| t.to_string());
    let pct = s.total.filter(|t| *t > 0).map_or(String::new(), |t| {
        format!(" ({:.1}%)", s.done as f64 * 100.0 / t as f64)
    });
    let eta = s.eta().map_or("?".to_owned(), |d| {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    });
    format!(
        "lifeline scan: {}/{total}{pct} in {}, {:.1}/s, ETA {eta}, in flight {}; {}",
        s.done,
        humantime::format_duration(Duration::from_secs(s.elapsed.as_secs())),
        s.rate(),
        s.in_flight,
        s.tallies()
    )
}
