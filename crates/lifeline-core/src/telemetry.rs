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
