//! Certificates for the TLS fakes, generated at start with rcgen (ECDSA P-256) and never written to disk, and the
//! rustls server configuration (ring provider, HTTP/1.1 ALPN) that serves them.

use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::TlsKind;

/// The names every leaf carries: a DNS SAN and an IP SAN (rcgen turns address strings into IP SANs).
const LEAF_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A server configuration and the certificate a client must trust to verify it.
pub(crate) struct TlsMaterial {
    pub(crate) server_config: Arc<rustls::ServerConfig>,
    pub(crate) ca_pem: String,
    pub(crate) ca_der: CertificateDer<'static>,
}

/// Generates the certificates for `kind` and the rustls configuration serving them.
pub(crate) fn build(kind: &TlsKind) -> anyhow::Result<TlsMaterial> {
    let now = OffsetDateTime::now_utc();
    let leaf_key = KeyPair::generate().context("generating the fake server's key")?;
    let (leaf, trust) = match kind {
        TlsKind::SelfSigned => {
            let params = leaf_params(now - Duration::days(1), now + Duration::days(30))?;
            let leaf = params
                .self_signed(&leaf_key)
                .context("self-signing the fake server's certificate")?;
            let trust = (leaf.pem(), leaf.der().clone());
            (leaf, trust)
        }
        TlsKind::Expired => {
            let params = leaf_params(now - Duration::days(60), now - Duration::days(1))?;
            signed_by_fresh_ca(params, &leaf_key, now, 30)?
        }
        TlsKind::CaSigned { days_left } => {
            let params = leaf_params(now - Duration::days(1), now + Duration::days(*days_left))?;
            signed_by_fresh_ca(params, &leaf_key, now, days_left.saturating_add(30).max(30))?
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions for the fake server")?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .context("loading the fake server's certificate into rustls")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        server_config: Arc::new(config),
        ca_pem: trust.0,
        ca_der: trust.1,
    })
}

/// A CA-signed server certificate as PEM files' contents, for real peers that load their own (the SMTP sink).
#[derive(Debug, Clone)]
pub struct PemMaterial {
    /// The CA a client must trust.
    pub ca_pem: String,
    /// The server's leaf certificate (SANs `localhost` and `127.0.0.1`, valid 30 days).
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

/// Generates a fresh CA and a leaf it signed for `localhost`/`127.0.0.1`.
///
/// # Errors
/// When rcgen fails (it does not with these fixed parameters).
pub fn ca_signed_pem() -> anyhow::Result<PemMaterial> {
    let now = OffsetDateTime::now_utc();
    let leaf_key = KeyPair::generate().context("generating the server's key")?;
    let params = leaf_params(now - Duration::days(1), now + Duration::days(30))?;
    let (leaf, (ca_pem, _)) = signed_by_fresh_ca(params, &leaf_key, now, 60)?;
    Ok(PemMaterial {
        ca_pem,
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// Parameters of a server leaf valid from `not_before` to `not_after`.
fn leaf_params(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(LEAF_NAMES.map(str::to_owned).to_vec())
        .context("building the fake server's certificate parameters")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// Signs `leaf_params` with a CA made for this server only, valid from yesterday for `ca_days` days; returns the
/// leaf and the CA as (PEM, DER).
fn signed_by_fresh_ca(
    leaf_params: CertificateParams,
    leaf_key: &KeyPair,
    now: OffsetDateTime,
    ca_days: i64,
) -> anyhow::Result<(Certificate, (String, CertificateDer<'static>))> {
    let ca_key = KeyPair::generate().context("generating the test CA's key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .context("building the test CA's parameters")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Lifeline test CA (do not trust)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::days(1);
    ca_params.not_after = now + Duration::days(ca_days);
    let ca = ca_params
        .self_signed(&ca_key)
        .context("self-signing the test CA")?;
    let leaf = leaf_params
        .signed_by(leaf_key, &ca, &ca_key)
        .context("signing the fake server's certificate with the test CA")?;
    Ok((leaf, (ca.pem(), ca.der().clone())))
}
