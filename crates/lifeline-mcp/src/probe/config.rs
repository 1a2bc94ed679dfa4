//! What to probe and how: [`Target`] and [`ProbeOptions`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::oauth::OAuthClient;
use super::report::CredentialKind;
use crate::era::EraHint;

/// Default bound on the whole probe (all phases together): 10 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on one reply body (JSON or the SSE bytes read while waiting for a response): 16 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Default bound on `tools/list` pages followed through `nextCursor` (spec `server/utilities/pagination`): 20.
pub const DEFAULT_MAX_TOOL_PAGES: u32 = 20;
/// Default warning window before a certificate's `not_after`: 14 days.
pub const DEFAULT_CERT_WARNING_DAYS: i64 = 14;
/// Default warning window before a configured credential's expiry (client secret, API key, refresh token): 7 days.
pub const DEFAULT_CREDENTIAL_WARNING_DAYS: i64 = 7;
/// Default latency bound: a probe whose total exceeds it is `degraded` with reason `slow`: 5 s.
pub const DEFAULT_SLOW_AFTER: Duration = Duration::from_secs(5);
/// How long a stdio server may take to answer the `server/discover` era probe before it is taken as legacy
/// (2026-07-28 `basic/transports/stdio` §Backward Compatibility: "does not respond within a reasonable timeout").
pub const DEFAULT_STDIO_DISCOVER_WAIT: Duration = Duration::from_secs(3);

/// One thing to probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A Streamable HTTP MCP endpoint (either era) or a legacy HTTP+SSE endpoint; `http` or `https`.
    Http(Url),
    /// A stdio MCP server started as a child process for the probe and shut down after it.
    Stdio(StdioCommand),
}

impl Target {
    /// A label for output: the URL with any user name and password replaced by `<redacted>`, or `stdio:` and
    /// the command line, shell-quoted where needed.
    pub fn label(&self) -> String {
        match self {
            Target::Http(url) => {
                if url.username().is_empty() && url.password().is_none() {
                    return url.to_string();
                }
                let mut clean = url.clone();
                let _ = clean.set_password(None);
                let _ = clean.set_username("");
                let s = clean.to_string();
                match s.split_once("://") {
                    Some((scheme, rest)) => format!("{scheme}://<redacted>@{rest}"),
                    None => s,
                }
            }
            Target::Stdio(cmd) => {
                let mut s = String::from("stdio:");
                for part in std::iter::once(&cmd.program).chain(cmd.args.iter()) {
                    s.push(' ');
                    s.push_str(&shell_quote(part));
                }
                s
            }
        }
    }
}

/// Quotes `s` for a POSIX shell when it holds anything but plain word characters.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A child process that speaks MCP on stdin/stdout (2025-11-25 and 2026-07-28 `basic/transports/stdio`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StdioCommand {
    /// The program, looked up on `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables for the child.
    pub env: Vec<(String, String)>,
    /// When false (the default) the child starts with only `PATH`, `HOME` and `env`; when true it inherits the
    /// caller's environment as well.
    pub inherit_env: bool,
    /// Working directory; the caller's when `None`.
    pub cwd: Option<PathBuf>,
}

/// Timeouts per phase. Each phase is also bounded by what is left of `total`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// The whole probe. Default [`DEFAULT_TOTAL_TIMEOUT`].
    pub total: Duration,
    /// DNS resolution; `None` means only `total` bounds it.
    pub dns: Option<Duration>,
    /// TCP connect (per probe, over all resolved addresses).
    pub connect: Option<Duration>,
    /// TLS handshake.
    pub tls: Option<Duration>,
    /// Each MCP step (request sent → response complete).
    pub step: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            total: DEFAULT_TOTAL_TIMEOUT,
            dns: None,
            connect: None,
            tls: None,
            step: None,
        }
    }
}

/// An opt-in `tools/call` made after `tools/list`. Side effects are the user's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The `arguments` object.
    pub arguments: Value,
}

/// A configured credential's expiry date, checked by every probe that uses the options: inside the warning window
/// ([`ProbeOptions::credential_warning_days`]) the verdict is `degraded` with reason `credential_expiring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialExpiry {
    /// Which credential.
    pub kind: CredentialKind,
    /// When it stops working, Unix seconds (UTC).
    pub expires_at_unix: i64,
}

impl CredentialExpiry {
    /// Parses an expiry date as operators write it: `2027-03-31` (midnight UTC), RFC 3339
    /// (`2027-03-31T12:00:00Z`), or Unix seconds (`1806451200`, the form of RFC 7591 §3.2.1
    /// `client_secret_expires_at`). Returns Unix seconds. `0` is refused: in RFC 7591 it means "does not
    /// expire", so leave the setting out instead.
    pub fn parse_date(raw: &str) -> Result<i64, String> {
        let raw = raw.trim();
        if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            return match raw.parse::<i64>() {
                Ok(0) => {
                    Err("0 means \"does not expire\" (RFC 7591): leave the setting out".to_owned())
                }
                Ok(n) => Ok(n),
                Err(e) => Err(format!("{e}")),
            };
        }
        if let Ok(t) =
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        {
            return Ok(t.unix_timestamp());
        }
        let date_format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(raw, &date_format)
            .map(|d| d.midnight().assume_utc().unix_timestamp())
            .map_err(|_| {
                format!(
                    "{raw:?} is not a date: write 2027-03-31, 2027-03-31T12:00:00Z or Unix seconds"
                )
            })
    }
}

/// A header value or token that is never printed (`Debug`, `Display` and `Serialize` show `<redacted>`); it
/// lives in `lifeline-core` so every service's config redacts it by type.
pub use lifeline_core::Secret;

/// How to probe. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Timeouts; default 10 s in total.
    pub timeouts: Timeouts,
    /// Extra request headers (`--header 'Name: value'`), sent on every HTTP request. Values are secrets.
    pub headers: Vec<(String, Secret)>,
    /// A bearer token sent as `Authorization: Bearer …` (`--bearer-token-file`, `LIFELINE_BEARER_TOKEN`).
    pub bearer_token: Option<Secret>,
    /// An OAuth client (client credentials or refresh-token grant) whose access token is sent as
    /// `Authorization: Bearer …`, cached across probes that share this `Arc`; `None` by default. Takes the
    /// place of `bearer_token` when both are set.
    pub oauth: Option<Arc<OAuthClient>>,
    /// Configured credential expiry dates to warn about; empty by default.
    pub credential_expiry: Vec<CredentialExpiry>,
    /// A credential expiring within this many days makes the verdict `degraded` (`credential_expiring`).
    /// Default [`DEFAULT_CREDENTIAL_WARNING_DAYS`].
    pub credential_warning_days: i64,
    /// The opt-in tool call; `None` by default.
    pub call: Option<ToolCall>,
    /// Bound on `tools/list` pages. Default [`DEFAULT_MAX_TOOL_PAGES`].
    pub max_tool_pages: u32,
    /// Bound on one reply. Default [`DEFAULT_MAX_REPLY_BYTES`].
    pub max_reply_bytes: usize,
    /// A certificate expiring within this many days makes the verdict `degraded` (`cert_expiring`).
    pub cert_warning_days: i64,
    /// A probe slower than this in total is `degraded` (`slow`).
    pub slow_after: Duration,
    /// Extra trust anchors (PEM certificates, e.g. a private CA), added to the Mozilla roots.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Send one extra request with a foreign `Origin` to see whether the server checks it (HTTP only).
    pub check_origin: bool,
    /// Skip era detection when the era is already known (the gateway caches it per upstream).
    pub era_hint: EraHint,
    /// How long a stdio server may stay silent on `server/discover` before it is taken as legacy.
    pub stdio_discover_wait: Duration,
    /// Synthetic transactions run after `tools/list` on the same session (see [`crate::transaction`]); `None`
    /// by default. Each adds its own timeout to the probe's.
    pub transactions: Option<std::sync::Arc<crate::transaction::TransactionSet>>,
    /// `clientInfo.name` / `version` sent to the server.
    pub client_name: String,
    /// See `client_name`.
    pub client_version: String,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeouts: Timeouts::default(),
            headers: Vec::new(),
            bearer_token: None,
            oauth: None,
            credential_expiry: Vec::new(),
            credential_warning_days: DEFAULT_CREDENTIAL_WARNING_DAYS,
            call: None,
            max_tool_pages: DEFAULT_MAX_TOOL_PAGES,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            cert_warning_days: DEFAULT_CERT_WARNING_DAYS,
            slow_after: DEFAULT_SLOW_AFTER,
            extra_roots_pem: Vec::new(),
            check_origin: true,
            era_hint: EraHint::Auto,
            stdio_discover_wait: DEFAULT_STDIO_DISCOVER_WAIT,
            transactions: None,
            client_name: "lifeline".to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates() {
        assert_eq!(
            CredentialExpiry::parse_date("1806451200"),
            Ok(1_806_451_200)
        );
        assert_eq!(
            CredentialExpiry::parse_date("2027-03-31"),
            Ok(1_806_451_200)
        );
        assert_eq!(
            CredentialExpiry::parse_date("2027-03-31T01:00:00+01:00"),
            Ok(1_806_451_200)
        );
        assert!(CredentialExpiry::parse_date("0")
            .unwrap_err()
            .contains("does not expire"));
        assert!(CredentialExpiry::parse_date("next week").is_err());
    }

    #[test]
    fn labels_redact_credentials_and_quote_commands() {
        let t = Target::Http(Url::parse("https://user:pw@h.example/mcp").unwrap());
        assert_eq!(t.label(), "https://<redacted>@h.example/mcp");
        let t = Target::Http(Url::parse("https://h.example/mcp").unwrap());
        assert_eq!(t.label(), "https://h.example/mcp");
        let t = Target::Stdio(StdioCommand {
            program: "sh".into(),
            args: vec!["-c".into(), "sleep 100".into(), "it's".into()],
            ..StdioCommand::default()
        });
        assert_eq!(t.label(), r"stdio: sh -c 'sleep 100' 'it'\''s'");
    }
}
