//! Defence in depth for "secrets are never printed": before any renderer sees a report, URL credentials are
//! replaced and every header value, token, URL credential and `--env` value is cut out of the report's free-text fields (the
//! engine never puts them there, but a server may echo a header back in an error message).
//!
//! Values shorter than [`MIN_SECRET_CHARS`] are left alone: they carry no secret worth the name, and cutting them
//! out of free text would mangle it (a header `X-Debug: 1` would eat every digit 1).

use lifeline_mcp::ProbeReport;
use serde_json::Value;
use url::Url;

/// Secrets shorter than this many characters are not searched for in free text.
pub(crate) const MIN_SECRET_CHARS: usize = 4;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// `report` with credentials removed from its URL and `secrets` cut out of every free-text field.
pub(crate) fn report(mut report: ProbeReport, secrets: &[String]) -> ProbeReport {
    report.url = url_label(&report.url);
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| s.chars().count() >= MIN_SECRET_CHARS)
        .collect();
    if secrets.is_empty() {
        return report;
    }
    let text = |s: &mut String| scrub(s, &secrets);
    let opt = |s: &mut Option<String>| {
        if let Some(s) = s {
            scrub(s, &secrets);
        }
    };
    text(&mut report.url);
    opt(&mut report.protocol_version);
    if let Some(f) = &mut report.failure {
        text(&mut f.message);
        opt(&mut f.rpc_message);
    }
    if let Some(info) = &mut report.server_info {
        opt(&mut info.name);
        opt(&mut info.version);
    }
    if let Some(caps) = &mut report.capabilities {
        scrub_value(caps, &secrets);
    }
    if let Some(tls) = &mut report.tls {
        opt(&mut tls.error);
        opt(&mut tls.subject);
        opt(&mut tls.issuer);
    }
    if let Some(auth) = &mut report.auth {
        opt(&mut auth.www_authenticate);
        opt(&mut auth.resource_metadata_url);
        if let Some(doc) = &mut auth.resource_metadata {
            scrub_value(doc, &secrets);
        }
        auth.authorization_servers.iter_mut().for_each(text);
    }
    if let Some(call) = &mut report.tool_call {
        text(&mut call.name);
    }
    report
}

/// A URL label without credentials: `https://user:pw@host/` → `https://<redacted>@host/`. Anything that is not
/// an absolute URL (a `stdio:` label) is returned as is.
pub(crate) fn url_label(label: &str) -> String {
    match Url::parse(label) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            let mut bare = url.clone();
            // Setting credentials on an http(s) URL cannot fail; on the odd URL that refuses, fall back to hiding
            // the whole authority.
            if bare.set_username("").is_err() || bare.set_password(None).is_err() {
                return format!("{}://{REDACTED}", url.scheme());
            }
            let text = bare.to_string();
            let prefix = format!("{}://", url.scheme());
            match text.strip_prefix(&prefix) {
                Some(rest) => format!("{prefix}{REDACTED}@{rest}"),
                None => text,
            }
        }
        _ => label.to_owned(),
    }
}

fn scrub(s: &mut String, secrets: &[&str]) {
    for secret in secrets {
        if s.contains(secret) {
            *s = s.replace(secret, REDACTED);
        }
    }
}

fn scrub_value(v: &mut Value, secrets: &[&str]) {
    match v {
        Value::String(s) => scrub(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, secrets)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub_value(i, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_mcp::probe::{AuthInfo, Failure};
    use lifeline_mcp::Reason;

    #[test]
    fn credentials_leave_the_url() {
        assert_eq!(
            url_label("https://u:pw@h.example/mcp"),
            "https://<redacted>@h.example/mcp"
        );
        assert_eq!(
            url_label("https://tok@h.example/mcp"),
            "https://<redacted>@h.example/mcp"
        );
        assert_eq!(url_label("https://h.example/mcp"), "https://h.example/mcp");
        assert_eq!(url_label("stdio: npx server"), "stdio: npx server");
    }

    #[test]
    fn secrets_are_cut_from_free_text_but_short_values_are_kept() {
        let mut r = crate::check::sample_report();
        r.failure = Some(Failure::new(
            Reason::RpcError,
            "server said: bad key sk-live-12345 and 1",
        ));
        r.auth = Some(AuthInfo {
            status: 401,
            www_authenticate: Some(
                "Bearer error=\"invalid_token\", token=\"sk-live-12345\"".to_owned(),
            ),
            resource_metadata: Some(serde_json::json!({"echo": ["sk-live-12345"]})),
            ..AuthInfo::default()
        });
        let r = report(r, &["sk-live-12345".to_owned(), "1".to_owned()]);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("sk-live-12345"), "{json}");
        assert_eq!(
            r.failure.unwrap().message,
            "server said: bad key <redacted> and 1"
        );
    }
}
