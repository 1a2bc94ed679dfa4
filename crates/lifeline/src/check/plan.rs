//! `lifeline check` flags validated into a [`Plan`]: what to probe, how, and what to do with the results.
//!
//! Usage mistakes (a combination clap cannot express, a malformed header or `--args`) are [`UsageError`]s, exit
//! 64, and are all detected before any file is read. Files that cannot be read (token, CA, snapshot) are
//! operational errors, exit 2. No message ever contains a header value or a token.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use std::sync::Arc;

use lifeline_mcp::probe::{
    ClientAuth, CredentialExpiry, CredentialKind, OAuthClient, OAuthConfig, Secret, SecretSource,
    StdioCommand, ToolCall,
};
use lifeline_mcp::schema::Snapshot;
use lifeline_mcp::{EraHint, ProbeOptions, Target};
use serde_json::Value;
use url::Url;

use super::{Args, EraArg, FailOn, SecretMethod};
use crate::exit::UsageError;

/// The environment variable that carries a bearer token when `--bearer-token-file` is not given.
pub(crate) const BEARER_TOKEN_ENV: &str = "LIFELINE_BEARER_TOKEN";

/// The environment variable that carries the OAuth client secret when `--oauth-client-secret-file` is not given.
pub(crate) const OAUTH_CLIENT_SECRET_ENV: &str = "LIFELINE_OAUTH_CLIENT_SECRET";
/// The environment variable that carries the OAuth refresh token when `--oauth-refresh-token-file` is not given.
pub(crate) const OAUTH_REFRESH_TOKEN_ENV: &str = "LIFELINE_OAUTH_REFRESH_TOKEN";

/// Everything `run` needs, validated.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The targets, in the order given.
    pub(crate) targets: Vec<Target>,
    /// How to probe them.
    pub(crate) options: ProbeOptions,
    /// `--json`.
    pub(crate) json: bool,
    /// `--junit FILE`.
    pub(crate) junit: Option<PathBuf>,
    /// `--snapshot FILE`, read and parsed.
    pub(crate) snapshot: Option<(PathBuf, Snapshot)>,
    /// `--update-snapshot FILE`.
    pub(crate) update_snapshot: Option<PathBuf>,
    /// `--fail-on`.
    pub(crate) fail_on: FailOn,
    /// `--concurrency`.
    pub(crate) concurrency: u16,
    /// Whether to GET each Streamable HTTP target's Server Card after its probe (not `--no-card`).
    pub(crate) card: bool,
    /// Header values, the token, URL credentials and `--env` values: redacted from every output.
    pub(crate) secrets: Vec<String>,
}

impl Plan {
    /// Validates `args` (usage errors first), then reads the files they name.
    pub(crate) fn from_args(args: Args) -> anyhow::Result<Plan> {
        let targets = targets(&args)?;
        if targets.len() > 1 {
            for (flag, given) in [
                ("--snapshot", args.snapshot.is_some()),
                ("--update-snapshot", args.update_snapshot.is_some()),
            ] {
                if given {
                    return Err(usage(format!(
                        "{flag} compares one server's tools, but {} targets were given; run one check per target",
                        targets.len()
                    )));
                }
            }
        }
        let stdio = args.stdio;
        if stdio {
            for (flag, given) in [
                ("--header", !args.headers.is_empty()),
                ("--bearer-token-file", args.bearer_token_file.is_some()),
                ("--ca-file", !args.ca_files.is_empty()),
                ("--no-origin-check", args.no_origin_check),
                ("--oauth-client-id", args.oauth_client_id.is_some()),
            ] {
                if given {
                    return Err(usage(format!(
                        "{flag} applies to HTTP targets only, not to --stdio"
                    )));
                }
            }
            if args.era == EraArg::Sse {
                return Err(usage(
                    "--era sse is an HTTP transport; a stdio server is modern or legacy".to_owned(),
                ));
            }
        }
        let headers = headers(&args.headers)?;
        let call = call(args.call.as_deref(), args.args.as_deref())?;
        let oauth_plan = oauth_usage(&args)?;
        let mut credential_expiry = Vec::new();
        for (flag, kind, raw) in [
            (
                "--oauth-client-secret-expires-at",
                CredentialKind::ClientSecret,
                &args.oauth_client_secret_expires_at,
            ),
            (
                "--api-key-expires-at",
                CredentialKind::ApiKey,
                &args.api_key_expires_at,
            ),
        ] {
            if let Some(raw) = raw {
                let expires_at_unix =
                    CredentialExpiry::parse_date(raw).map_err(|e| usage(format!("{flag}: {e}")))?;
                credential_expiry.push(CredentialExpiry {
                    kind,
                    expires_at_unix,
                });
            }
        }
        let env_token = if stdio {
            None
        } else {
            std::env::var(BEARER_TOKEN_ENV).ok()
        };
        if let Some(token) = &env_token {
            if has_control(token.trim()) {
                return Err(usage(format!(
                    "{BEARER_TOKEN_ENV} contains a line break or control character"
                )));
            }
        }

        // Files: operational errors from here on.
        let bearer_token = match &args.bearer_token_file {
            Some(path) => Some(read_token(path)?),
            None => env_token
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        };
        let oauth = match oauth_plan {
            Some(plan) => Some(plan.read()?),
            None => None,
        };
        let mut extra_roots_pem = Vec::new();
        for path in &args.ca_files {
            extra_roots_pem.push(read_ca(path)?);
        }
        let transactions = match &args.transaction {
            Some(path) => Some(std::sync::Arc::new(read_transactions(path)?)),
            None => None,
        };
        let snapshot = match &args.snapshot {
            Some(path) => Some((path.clone(), super::snapshot::load(path)?)),
            None => None,
        };

        let mut secrets: Vec<String> = headers.iter().map(|(_, v)| v.expose().to_owned()).collect();
        secrets.extend(bearer_token.clone());
        if let Some((_, oauth_secrets)) = &oauth {
            secrets.extend(oauth_secrets.iter().cloned());
        }
        for target in &targets {
            match target {
                Target::Http(url) => {
                    secrets
                        .extend([url.username(), url.password().unwrap_or("")].map(str::to_owned));
                }
                // `--env` values are where stdio servers take their API keys.
                Target::Stdio(cmd) => secrets.extend(cmd.env.iter().map(|(_, v)| v.clone())),
            }
        }
        secrets.retain(|s| !s.is_empty());

        let mut options = ProbeOptions::default();
        options.timeouts.total = args.timeout;
        options.timeouts.dns = args.dns_timeout;
        options.timeouts.connect = args.connect_timeout;
        options.timeouts.tls = args.tls_timeout;
        options.timeouts.step = args.step_timeout;
        options.headers = headers;
        options.bearer_token = bearer_token.map(Secret::new);
        options.oauth = oauth.map(|(config, _)| Arc::new(OAuthClient::new(config)));
        options.credential_expiry = credential_expiry;
        options.credential_warning_days = args.credential_warning_days;
        options.call = call;
        options.transactions = transactions;
        options.max_tool_pages = args.max_tool_pages;
        options.cert_warning_days = args.cert_warning_days;
        options.slow_after = args.slow;
        options.extra_roots_pem = extra_roots_pem;
        options.check_origin = !args.no_origin_check;
        options.era_hint = match args.era {
            EraArg::Auto => EraHint::Auto,
            EraArg::Modern => EraHint::Modern,
            EraArg::Legacy => EraHint::Legacy,
            EraArg::Sse => EraHint::Sse,
        };

        Ok(Plan {
            targets,
            options,
            json: args.json,
            junit: args.junit,
            snapshot,
            update_snapshot: args.update_snapshot,
            fail_on: args.fail_on,
            concurrency: args.concurrency,
            card: !args.no_card,
            secrets,
        })
    }
}

/// The OAuth flags, checked for usage mistakes before any file is read.
struct OAuthPlan {
    client_id: String,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    method: SecretMethod,
    key_file: Option<PathBuf>,
    key_id: Option<String>,
    refresh_file: Option<PathBuf>,
    refresh_env: Option<String>,
    scope: Option<String>,
    token_url: Option<Url>,
}

fn oauth_usage(args: &Args) -> anyhow::Result<Option<OAuthPlan>> {
    let Some(client_id) = &args.oauth_client_id else {
        for (flag, given) in [
            (
                "--oauth-client-secret-file",
                args.oauth_client_secret_file.is_some(),
            ),
            (
                "--oauth-private-key-file",
                args.oauth_private_key_file.is_some(),
            ),
            (
                "--oauth-refresh-token-file",
                args.oauth_refresh_token_file.is_some(),
            ),
            ("--oauth-scope", args.oauth_scope.is_some()),
            ("--oauth-token-url", args.oauth_token_url.is_some()),
            (
                "--oauth-client-secret-expires-at",
                args.oauth_client_secret_expires_at.is_some(),
            ),
        ] {
            if given {
                return Err(usage(format!("{flag} needs --oauth-client-id")));
            }
        }
        return Ok(None);
    };
    if client_id.trim().is_empty() || has_control(client_id) {
        return Err(usage(
            "--oauth-client-id must be a non-empty client id".to_owned(),
        ));
    }
    let authorization_header = args.headers.iter().any(|h| {
        h.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
    });
    if args.bearer_token_file.is_some() || authorization_header {
        return Err(usage(
            "--oauth-client-id sets the Authorization header; drop --bearer-token-file and \
             --header 'Authorization: …'"
                .to_owned(),
        ));
    }
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let secret_env = if args.oauth_client_secret_file.is_none() {
        env(OAUTH_CLIENT_SECRET_ENV)
    } else {
        None
    };
    let refresh_env = if args.oauth_refresh_token_file.is_none() {
        env(OAUTH_REFRESH_TOKEN_ENV)
    } else {
        None
    };
    let has_secret = args.oauth_client_secret_file.is_some() || secret_env.is_some();
    if has_secret && args.oauth_private_key_file.is_some() {
        return Err(usage(
            "give either a client secret (--oauth-client-secret-file or LIFELINE_OAUTH_CLIENT_SECRET) or \
             --oauth-private-key-file, not both"
                .to_owned(),
        ));
    }
    let has_refresh = args.oauth_refresh_token_file.is_some() || refresh_env.is_some();
    if !has_secret && args.oauth_private_key_file.is_none() && !has_refresh {
        return Err(usage(format!(
            "--oauth-client-id needs a credential: --oauth-client-secret-file FILE (or {OAUTH_CLIENT_SECRET_ENV}), \
             --oauth-private-key-file PEM, or --oauth-refresh-token-file FILE (or {OAUTH_REFRESH_TOKEN_ENV})"
        )));
    }
    for (name, value) in [
        (OAUTH_CLIENT_SECRET_ENV, &secret_env),
        (OAUTH_REFRESH_TOKEN_ENV, &refresh_env),
    ] {
        if value.as_deref().is_some_and(has_control) {
            return Err(usage(format!(
                "{name} contains a line break or control character"
            )));
        }
    }
    let token_url = match &args.oauth_token_url {
        None => None,
        Some(raw) => {
            let url = Url::parse(raw)
                .map_err(|e| usage(format!("--oauth-token-url is not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(usage(
                    "--oauth-token-url must be an http:// or https:// URL".to_owned(),
                ));
            }
            Some(url)
        }
    };
    Ok(Some(OAuthPlan {
        client_id: client_id.trim().to_owned(),
        secret_file: args.oauth_client_secret_file.clone(),
        secret_env,
        method: args.oauth_auth_method,
        key_file: args.oauth_private_key_file.clone(),
        key_id: args.oauth_key_id.clone(),
        refresh_file: args.oauth_refresh_token_file.clone(),
        refresh_env,
        scope: args.oauth_scope.clone().filter(|s| !s.trim().is_empty()),
        token_url,
    }))
}

impl OAuthPlan {
    /// Reads the secret, key and refresh token (operational errors, exit 2): the configuration, and the
    /// values to redact from every output.
    fn read(self) -> anyhow::Result<(OAuthConfig, Vec<String>)> {
        let mut secrets = Vec::new();
        let secret = match (&self.secret_file, self.secret_env) {
            (Some(path), _) => Some(read_secret_file(path, "OAuth client secret")?),
            (None, Some(v)) => Some(v),
            (None, None) => None,
        };
        let auth = match (secret, &self.key_file) {
            (Some(secret), _) => {
                secrets.push(secret.clone());
                let source = SecretSource::Value(Secret::new(secret));
                match self.method {
                    SecretMethod::Basic => ClientAuth::SecretBasic(source),
                    SecretMethod::Post => ClientAuth::SecretPost(source),
                }
            }
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the OAuth private key file {}", path.display())
                })?;
                lifeline_mcp::probe::oauth::check_private_key(&pem).map_err(|e| {
                    anyhow::anyhow!("the OAuth private key file {}: {e}", path.display())
                })?;
                ClientAuth::PrivateKeyJwt {
                    key: SecretSource::Value(Secret::new(pem)),
                    key_id: self.key_id,
                }
            }
            (None, None) => ClientAuth::None,
        };
        let refresh = match (&self.refresh_file, self.refresh_env) {
            (Some(path), _) => Some(read_secret_file(path, "OAuth refresh token")?),
            (None, Some(v)) => Some(v),
            (None, None) => None,
        };
        secrets.extend(refresh.clone());
        let mut config =
            OAuthConfig::client_secret(self.client_id, SecretSource::Value(Secret::new("")));
        config.auth = auth;
        config.refresh_token = refresh.map(|r| SecretSource::Value(Secret::new(r)));
        config.scope = self.scope;
        config.token_url = self.token_url;
        Ok((config, secrets))
    }
}

/// Reads and validates a `--transaction` file: unreadable is operational (exit 2); invalid content, including a
/// tool step the safety gate refuses (not in `allow_tools`), is a usage error (exit 64) naming each field.
fn read_transactions(path: &Path) -> anyhow::Result<lifeline_mcp::transaction::TransactionSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the transaction file {}", path.display()))?;
    let set = lifeline_mcp::transaction::TransactionSet::from_yaml(&text).map_err(|e| {
        usage(format!(
            "{}: {}",
            path.display(),
            e.to_string()
                .replace('\n', &format!("\n{}: ", path.display()))
        ))
    })?;
    if set.transactions.is_empty() {
        return Err(usage(format!(
            "{}: transactions: the file holds no transaction",
            path.display()
        )));
    }
    Ok(set)
}

fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

fn targets(args: &Args) -> anyhow::Result<Vec<Target>> {
    if !args.stdio && (!args.env.is_empty() || args.inherit_env) {
        return Err(usage(
            "--env and --inherit-env configure a stdio server; they need --stdio".to_owned(),
        ));
    }
    match (args.stdio, args.urls.is_empty(), args.command.is_empty()) {
        (false, true, true) => Err(usage(
            "no target: give one or more URLs (lifeline check https://mcp.example.com/mcp) or a stdio server \
             (lifeline check --stdio -- COMMAND [ARGS...])"
                .to_owned(),
        )),
        (false, _, false) => Err(usage(
            "a command after `--` is a stdio server: add --stdio (lifeline check --stdio -- COMMAND [ARGS...])"
                .to_owned(),
        )),
        (false, false, true) => args.urls.iter().map(|u| parse_url(u).map(Target::Http)).collect(),
        (true, false, _) => Err(usage(
            "give either URLs or --stdio -- COMMAND, not both; run one check per kind".to_owned(),
        )),
        (true, true, true) => Err(usage(
            "--stdio needs the server's command after `--`: lifeline check --stdio -- COMMAND [ARGS...]".to_owned(),
        )),
        (true, true, false) => {
            let mut env = Vec::with_capacity(args.env.len());
            for (i, pair) in args.env.iter().enumerate() {
                match pair.split_once('=') {
                    Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
                        env.push((key.to_owned(), value.to_owned()));
                    }
                    // The value may be a secret: name the position, not the text.
                    _ => return Err(usage(format!("--env #{}: expected KEY=VALUE with a non-empty KEY", i + 1))),
                }
            }
            let (program, rest) = args
                .command
                .split_first()
                .ok_or_else(|| usage("--stdio needs a command after `--`".to_owned()))?;
            Ok(vec![Target::Stdio(StdioCommand {
                program: program.clone(),
                args: rest.to_vec(),
                env,
                inherit_env: args.inherit_env,
                cwd: None,
            })])
        }
    }
}

fn parse_url(text: &str) -> anyhow::Result<Url> {
    let shown = mask_userinfo(text);
    let url = Url::parse(text).map_err(|e| {
        usage(format!(
            "`{shown}` is not a URL ({e}); write it in full, e.g. https://mcp.example.com/mcp"
        ))
    })?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(usage(format!("`{shown}` has no host"))),
        other => Err(usage(format!(
            "`{shown}`: the scheme `{other}` is not supported; MCP endpoints are http:// or https:// \
             (for a local command use --stdio -- COMMAND)"
        ))),
    }
}

/// `text` with anything between `://` and the `@` of a user-info part replaced, for error messages.
fn mask_userinfo(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

/// Parses `--header 'Name: value'` flags. Errors name the flag's position and never echo a value.
fn headers(raw: &[String]) -> anyhow::Result<Vec<(String, Secret)>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let n = i + 1;
        let Some((name, value)) = h.split_once(':') else {
            return Err(usage(format!(
                "--header #{n} is not `Name: value` (no colon); e.g. --header 'X-Api-Key: …'"
            )));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(usage(format!(
                "--header #{n}: the part before the colon is not a valid HTTP header name (letters, digits and \
                 !#$%&'*+-.^_`|~ only); e.g. --header 'X-Api-Key: …'"
            )));
        }
        let value = value.trim();
        if has_control(value) {
            return Err(usage(format!(
                "--header #{n} ({name}): the value contains a line break or control character"
            )));
        }
        out.push((name.to_owned(), Secret::new(value)));
    }
    Ok(out)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True when `s` has a character a header value cannot carry (RFC 9110 §5.5: no CR, LF, NUL or other controls
/// but tab).
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

fn call(tool: Option<&str>, args: Option<&str>) -> anyhow::Result<Option<ToolCall>> {
    let Some(name) = tool else { return Ok(None) };
    if name.trim().is_empty() {
        return Err(usage("--call needs a tool name".to_owned()));
    }
    let arguments = match args {
        None => Value::Object(serde_json::Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(usage(
                    "--args must be a JSON object, e.g. --args '{\"message\":\"hi\"}'".to_owned(),
                ))
            }
            Err(e) => {
                return Err(usage(format!(
                    "--args is not valid JSON ({e}); e.g. --args '{{\"message\":\"hi\"}}'"
                )))
            }
        },
    };
    Ok(Some(ToolCall {
        name: name.to_owned(),
        arguments,
    }))
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    read_secret_file(path, "bearer token")
}

/// Reads a file that holds one secret (`what`, e.g. `bearer token`): trimmed, one line, not empty.
fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!("the {what} file {} is empty", path.display());
    }
    if has_control(token) {
        anyhow::bail!(
            "the {what} file {} holds more than one line or a control character; it must hold only the value",
            path.display()
        );
    }
    Ok(token.to_owned())
}

fn read_ca(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the CA file {}", path.display()))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(
            "the CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_errors_never_echo_values() {
        let ok = headers(&["X-Api-Key:  s3cret-value ".to_owned(), "Empty:".to_owned()]).unwrap();
        assert_eq!(ok[0].0, "X-Api-Key");
        assert_eq!(ok[0].1.expose(), "s3cret-value");
        assert_eq!(ok[1].1.expose(), "");
        for bad in [
            "no colon s3cret",
            "Bad Name: s3cret",
            ": s3cret",
            "X: s3cret\r\nInjected: 1",
        ] {
            let err = headers(&[bad.to_owned()]).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{bad:?} → {err}");
            assert!(err.contains("--header #1"), "{err}");
        }
    }

    #[test]
    fn call_args_must_be_a_json_object() {
        assert_eq!(call(None, None).unwrap(), None);
        let c = call(Some("echo"), None).unwrap().unwrap();
        assert_eq!(c.arguments, serde_json::json!({}));
        let c = call(Some("echo"), Some(r#"{"message":"hi"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(c.arguments["message"], "hi");
        assert!(call(Some("echo"), Some("[1]"))
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
        assert!(call(Some("echo"), Some("{nope"))
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_errors_mask_credentials() {
        assert!(parse_url("https://mcp.example.com/mcp").is_ok());
        let err = parse_url("ftp://x/y").unwrap_err().to_string();
        assert!(err.contains("http:// or https://"), "{err}");
        let err = parse_url("localhost:3000/mcp").unwrap_err().to_string();
        assert!(err.contains("scheme `localhost`"), "{err}");
        let err = parse_url("https://user:hunter2@host:99999/mcp")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("<redacted>@host"),
            "{err}"
        );
        assert_eq!(mask_userinfo("https://h/a@b"), "https://h/a@b");
    }
}
