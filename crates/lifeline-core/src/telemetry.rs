//! Tracing set-up: human text or JSON lines on stderr, filtered by an `EnvFilter` directive string that the
//! caller supplies (the binary reads it from `LIFELINE_LOG`; this crate never reads the environment), and,
//! when the caller passes a [`TracesConfig`], OpenTelemetry traces exported over OTLP (`http/protobuf` or `grpc`)
//! with the official `opentelemetry` crates through `tracing-opentelemetry` (`otlp`).
//!
//! Traces are off unless configured: [`traces_enabled`] is then false, and the instrumented code (the gateway's
//! request path, the probe engine) creates no span at all. When on, every span whose target starts with
//! `lifeline` (any level) and every event at INFO or above inside one becomes OpenTelemetry data, whatever the
//! log filter says; the log filter still decides what reaches stderr. [`context`] carries W3C trace context in
//! and out of spans (HTTP headers, MCP `_meta`) without exposing the OpenTelemetry types.
//!
//! The OTLP exporter runs the SDK's batch processor (its own thread; `OTEL_BSP_*` tune it) and sends each
//! batch on the caller's tokio runtime (the workspace's `reqwest` for OTLP/HTTP, the exporter's tonic channel
//! for OTLP/gRPC); [`shutdown`] flushes what is queued.
//! The official exporter also honours `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, `…_TIMEOUT` and `…_COMPRESSION`
//! by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

pub mod context;
mod otlp;

pub use otlp::{traces_url, OtlpProtocol, TraceSampler, TracesConfig};

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable text (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The setting's spelling: `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    /// `text` or `json`; the error is the message to put after the field path.
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not one of text, json")),
        }
    }
}

impl serde::Serialize for LogFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Errors from [`init`] and [`init_traces`].
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter directive does not parse (`info,lifeline_gateway=debug` is the expected shape).
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The directive given.
        filter: String,
        /// Why it does not parse.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP exporter could not be built (no tokio runtime, an endpoint the exporter refuses).
    #[error("cannot start the OTLP trace exporter for {endpoint}: {message}")]
    Exporter {
        /// The traces URL.
        endpoint: String,
        /// What the exporter said.
        message: String,
    },
}

/// Whether OTLP traces are on in this process: set by [`init`] or [`init_traces`] with a [`TracesConfig`], and
/// never unset. Instrumented hot paths test this first (one relaxed atomic load), so spans cost nothing when off.
pub fn traces_enabled() -> bool {
    TRACES_ON.load(Ordering::Relaxed)
}

static TRACES_ON: AtomicBool = AtomicBool::new(false);

/// The installed tracer provider, kept for [`shutdown`].
static PROVIDER: Mutex<Option<opentelemetry_sdk::trace::SdkTracerProvider>> = Mutex::new(None);

/// Installs the global subscriber writing to stderr. `filter` is an `EnvFilter` directive such as `info` or
/// `info,lifeline_gateway=debug`. With `traces`, also the OTLP trace exporter (see the module doc). A second call
/// keeps the first subscriber (tests call it freely). Must run inside a tokio runtime when `traces` is given.
///
/// Errors: [`TelemetryError::Filter`] for a directive that does not parse; [`TelemetryError::Exporter`] when
/// the exporter cannot be built.
pub fn init(
    format: LogFormat,
    filter: &str,
    traces: Option<&TracesConfig>,
) -> Result<(), TelemetryError> {
    let env_filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|source| {
        TelemetryError::Filter {
            filter: filter.to_owned(),
            source,
        }
    })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let otel = traces.map(otel_layer).transpose()?;
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(env_filter))
        .with(otel)
        .try_init();
    Ok(())
}

/// Installs a subscriber that only exports traces (no log output), for the subcommands that print their own
/// results and log nothing (`check`, `scan`, `lint`). Must run inside a tokio runtime.
///
/// Errors: [`TelemetryError::Exporter`] when the exporter cannot be built.
pub fn init_traces(traces: &TracesConfig) -> Result<(), TelemetryError> {
    let otel = otel_layer(traces)?;
    let _ = tracing_subscriber::registry().with(otel).try_init();
    Ok(())
}

/// Flushes the spans still queued and stops the exporter, waiting at most `timeout`. A no-op when traces are
/// off or already shut down. Call once, at the end of `main`, while the runtime still runs.
pub async fn shutdown(timeout: Duration) {
    let provider = PROVIDER.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(provider) = provider else {
        return;
    };
    // The SDK's shutdown blocks this thread until its batch thread has exported, and the export itself runs on
    // the runtime: move the wait off the runtime's workers.
    let wait = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
    match tokio::time::timeout(timeout + Duration::from_millis(500), wait).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => eprintln!("warning: flushing the OTLP traces failed: {err}"),
        Ok(Err(_)) | Err(_) => {
            eprintln!("warning: flushing the OTLP traces did not finish within {timeout:?}")
        }
    }
}

/// The `tracing-opentelemetry` layer for `traces`, filtered to Lifeline's own spans and their INFO+ events.
fn otel_layer<S>(
    traces: &TracesConfig,
) -> Result<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;
    let provider = otlp::provider(traces)?;
    let tracer = provider.tracer("lifeline");
    *PROVIDER.lock().unwrap_or_else(|p| p.into_inner()) = Some(provider);
    TRACES_ON.store(true, Ordering::Relaxed);
    let ours = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("lifeline")
            && (meta.is_span() || *meta.level() <= tracing::Level::INFO)
    });
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(ours)
        .boxed())
}
