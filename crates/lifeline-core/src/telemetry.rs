//! Tracing set-up: human text or JSON lines on stderr, filtered by an `EnvFilter` directive string that the
//! caller supplies (the binary reads it from `LIFELINE_LOG`; this crate never reads the environment).

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable text (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Errors from [`init`].
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
}

/// Installs the global subscriber writing to stderr. `filter` is an `EnvFilter` directive such as `info` or
/// `info,lifeline_gateway=debug`. A second call keeps the first subscriber (tests call it freely).
///
/// Errors: [`TelemetryError::Filter`] for a directive that does not parse.
pub fn init(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|source| {
        TelemetryError::Filter {
            filter: filter.to_owned(),
            source,
        }
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
