//! TLS for the prober: a rustls client whose certificate verifier records what it saw, so a probe can report the
//! chain's validity, issuer and expiry even when verification fails (an expired certificate is exactly what an
//! operator needs to see).

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::probe::report::TlsInfo;
use crate::verdict::Reason;

/// What the verifier saw during one handshake.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) leaf: CertificateDer<'static>,
    pub(crate) error: Option<rustls::Error>,
}

/// A per-probe client configuration and the slot its verifier writes into.
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) seen: Arc<Mutex<Option<Seen>>>,
}

/// Errors building the TLS client (only a bad `--ca-file` can cause one).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsSetupError {
    /// The extra CA bundle held no usable certificate.
    #[error("extra CA bundle: {0}")]
    BadCa(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn mozilla_roots() -> RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS
        .get_or_init(|| RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .clone()
}

impl TlsSetup {
    /// Mozilla's roots plus `extra_roots_pem` (each a PEM bundle). ALPN offers only `http/1.1`: the prober speaks
    /// HTTP/1.1, which every MCP server must accept.
    pub(crate) fn new(extra_roots_pem: &[Vec<u8>]) -> Result<TlsSetup, TlsSetupError> {
        let mut roots = mozilla_roots();
        for pem in extra_roots_pem {
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| TlsSetupError::BadCa(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsSetupError::BadCa(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(TlsSetupError::BadCa("no PEM certificate found".into()));
            }
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsSetupError::BadCa(e.to_string()))?;
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier {
            inner,
            seen: seen.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSetup {
            config: Arc::new(config),
            seen,
        })
    }

    /// Another handle on the same configuration and slot (only the first connection's certificate is reported).
    pub(crate) fn clone_config(&self) -> TlsSetup {
        TlsSetup {
            config: self.config.clone(),
            seen: self.seen.clone(),
        }
    }

    /// What the last handshake's verifier saw, if it got that far.
    pub(crate) fn seen(&self) -> Option<Seen> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(Seen {
                leaf: end_entity.clone().into_owned(),
                error: result.as_ref().err().cloned(),
            });
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The verdict reason for a failed handshake: `tls_expired` when the verifier said the certificate is expired,
/// `tls_failed` otherwise.
pub(crate) fn reason_for(error: Option<&rustls::Error>) -> Reason {
    match error {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => Reason::TlsExpired,
        _ => Reason::TlsFailed,
    }
}

/// A short, operator-facing description of a verification error.
pub(crate) fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate is not signed by a trusted CA (self-signed or private CA; use --ca-file)"
                .into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "certificate has expired".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "certificate is not valid for this host name".into(),
        other => other.to_string(),
    }
}

/// Reads subject, issuer and expiry from a DER certificate. `now_unix` is the probe's clock in seconds.
pub(crate) fn inspect(leaf: &CertificateDer<'_>, now_unix: i64) -> TlsInfo {
    let mut info = TlsInfo::default();
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
        info.subject = Some(cert.subject().to_string());
        info.issuer = Some(cert.issuer().to_string());
        let not_after = cert.validity().not_after.timestamp();
        info.not_after = time::OffsetDateTime::from_unix_timestamp(not_after)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        info.days_left = Some((not_after - now_unix).div_euclid(86_400));
    }
    info
}
