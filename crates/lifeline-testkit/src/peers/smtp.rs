//! A real SMTP server for the email alert tests: `tests/peers/smtp_sink.py` on aiosmtpd 1.4.6 (the `smtp`
//! venv of `scripts/install-peers.sh`), on 127.0.0.1 with a port the OS picks. It requires SMTP AUTH with the
//! given credentials (PLAIN/LOGIN; without TLS on loopback, or after a required STARTTLS), refuses recipients whose local part starts
//! with `reject` with a permanent 550, and keeps every accepted message as a JSON file that [`SmtpSink::messages`]
//! reads back.

use std::net::SocketAddr;
use std::process::Command;

use serde::Deserialize;

use super::{installed, peers_dir, peers_sources};
use crate::process::ChildGuard;

const ANNOUNCE: &str = "smtp-sink: listening on 127.0.0.1:";

/// One accepted message.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpMessage {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub rcpt_tos: Vec<String>,
    /// The user that authenticated (`AUTH`), if any.
    pub auth_user: Option<String>,
    /// Whether the session ran over TLS (after `STARTTLS`).
    pub tls: bool,
    /// The message as transmitted (headers and body, RFC 5322).
    pub data: String,
}

/// A running sink. Dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct SmtpSink {
    /// Its address.
    pub addr: SocketAddr,
    /// The process.
    pub guard: ChildGuard,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink accepting `AUTH` as `user`/`password` only, over plain SMTP.
    ///
    /// # Panics
    /// If the `smtp` venv is not installed ("run scripts/install-peers.sh"), or it does not listen within
    /// [`super::STARTUP_PATIENCE`].
    pub async fn start(user: &str, password: &str) -> SmtpSink {
        Self::spawn(user, password, None).await
    }

    /// Starts the sink with STARTTLS required before `AUTH` and mail (RFC 3207), serving a certificate for
    /// `localhost`/`127.0.0.1` signed by `tls`'s CA (see [`crate::fakes::ca_signed_pem`]).
    ///
    /// # Panics
    /// As [`SmtpSink::start`].
    pub async fn start_starttls(
        user: &str,
        password: &str,
        tls: &crate::fakes::PemMaterial,
    ) -> SmtpSink {
        Self::spawn(user, password, Some(tls)).await
    }

    async fn spawn(
        user: &str,
        password: &str,
        tls: Option<&crate::fakes::PemMaterial>,
    ) -> SmtpSink {
        let python = installed(peers_dir().join("smtp/bin/python"), "the smtp venv");
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let mut cmd = Command::new(python);
        cmd.arg(peers_sources().join("smtp_sink.py"))
            .arg(dir.path())
            .args([user, password]);
        if let Some(tls) = tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, &tls.cert_pem).expect("writing the sink's certificate");
            std::fs::write(&key, &tls.key_pem).expect("writing the sink's key");
            cmd.arg(cert).arg(key);
        }
        cmd.env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut guard = ChildGuard::spawn("smtp-sink", cmd).unwrap_or_else(|e| panic!("{e}"));
        let addr = super::announced_addr(&mut guard, ANNOUNCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        SmtpSink { addr, guard, dir }
    }

    /// The accepted messages, in arrival order.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.records("")
            .into_iter()
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    /// How many recipients were refused with 550 so far.
    pub fn rejected(&self) -> usize {
        self.records("rejected-").len()
    }

    /// The contents of the record files named `<prefix><n>.json`, by `n`.
    fn records(&self, prefix: &str) -> Vec<String> {
        let mut found: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name
                            .strip_prefix(prefix)?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()?;
                        Some((n, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }
}
