//! Email over SMTP (RFC 5321) through `lettre`: STARTTLS (RFC 3207) or implicit TLS (RFC 8314 §3.3) with the
//! webpki roots, or plain for a loopback relay; SMTP AUTH when credentials are set. One `text/plain` message
//! per alert to every recipient, subject = the one-line summary. The alerts of one incident thread together in
//! mail clients: each has a stable `Message-ID` and the later ones point at the `opened` one with
//! `In-Reply-To`/`References` (RFC 5322 §3.6.4).
//!
//! A 4xx reply is transient and retried; a 5xx reply is permanent ([`SendError::Rejected`], RFC 5321 §4.2.1).

use std::path::Path;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;
use crate::config::{EmailSettings, SmtpTls, MAX_CA_FILE_BYTES};
use crate::store::{AlertKindTag, ClaimedAlert};

/// Sends `a` to the settings' recipients within `timeout` (connect, TLS, every command and the whole send).
pub(super) async fn send(
    s: &EmailSettings,
    timeout: Duration,
    a: &ClaimedAlert,
) -> Result<(), SendError> {
    let message = message(s, a)?;
    let mut params = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        params = params.add_root_certificate(read_ca_file(path).await?);
    }
    let tls = || {
        params
            .clone()
            .build_rustls()
            .map_err(|e| SendError::Rejected(format!("TLS setup for {}: {e}", s.host)))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .timeout(Some(timeout));
    builder = match s.tls {
        SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls()?)),
        SmtpTls::None => builder.tls(Tls::None),
    };
    if let (Some(user), Some(password)) = (&s.username, &s.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    let transport = builder.build();
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => Err(SendError::Transport("timed out".into())),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is_permanent() => Err(SendError::Rejected(format!(
            "SMTP {}",
            e.status()
                .map_or_else(|| "5xx".to_owned(), |c| c.to_string())
        ))),
        // Keep only the kind: the text can quote the server's banner or our credentials' user name.
        Ok(Err(e)) => Err(SendError::Transport(if e.is_timeout() {
            "timed out".into()
        } else if e.is_transient() {
            format!(
                "SMTP {}",
                e.status()
                    .map_or_else(|| "4xx".to_owned(), |c| c.to_string())
            )
        } else if e.is_tls() {
            "TLS failed".into()
        } else {
            "SMTP connection failed".into()
        })),
    }
}

/// The extra CAs of `ca_file` (a PEM bundle, at most [`MAX_CA_FILE_BYTES`]). A missing or bad file fails the send
/// for good: retrying will not fix it.
async fn read_ca_file(path: &Path) -> Result<Certificate, SendError> {
    let refuse = |what: String| SendError::Rejected(format!("ca_file {}: {what}", path.display()));
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(refuse(format!("larger than {MAX_CA_FILE_BYTES} bytes")));
    }
    let pem = tokio::fs::read(path)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    Certificate::from_pem(&pem).map_err(|e| refuse(e.to_string()))
}

/// The message of `a`: summary as the subject, the facts as the body, threaded per incident.
fn message(s: &EmailSettings, a: &ClaimedAlert) -> Result<Message, SendError> {
    let domain = s.from.email.domain().to_owned();
    let id = |kind: &str, seq: i64| {
        format!(
            "<lifeline.{}.{}.{kind}.{seq}@{domain}>",
            a.target, a.incident_id
        )
    };
    let mut b = Message::builder()
        .from(s.from.clone())
        .subject(super::truncate(&super::summary(a), 200))
        .message_id(Some(id(a.kind.as_str(), a.seq)))
        .header(ContentType::TEXT_PLAIN);
    for to in &s.to {
        b = b.to(to.clone());
    }
    if a.kind != AlertKindTag::Opened {
        let first = id(AlertKindTag::Opened.as_str(), 0);
        b = b.in_reply_to(first.clone()).references(first);
    }
    b.body(body(a))
        .map_err(|e| SendError::Rejected(format!("cannot build the message: {e}")))
}

fn body(a: &ClaimedAlert) -> String {
    let mut text = format!(
        "{}\n\nTarget:    {}\nURL:       {}\nIncident:  #{} ({})\n",
        super::summary(a),
        a.target,
        a.url,
        a.incident_id,
        super::dedup_key(&a.target, a.incident_id),
    );
    let mut line = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            text.push_str(&format!("{k:<10} {v}\n"));
        }
    };
    line("Reason:", a.reason.clone());
    line("Message:", a.message.clone());
    line("Opened:", super::rfc3339(a.opened_ms));
    line("Resolved:", a.resolved_ms.and_then(super::rfc3339));
    text.push_str("\n-- \nSent by lifeline monitor.\n");
    text
}
