//! The TLS set-ups of `FakeKind::Healthy`: self-signed, expired, and CA-signed with a chosen expiry.

use std::sync::Arc;

use http::{Method, StatusCode};
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts, TlsKind};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, Error as TlsError};
use tokio::net::TcpStream;

use super::support::{initialize, open_on, read, Fake, STEP, V};

async fn tls_connect(
    server: &FakeServer,
    trust: Option<CertificateDer<'static>>,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(der) = trust {
        roots.add(der).expect("trust anchor");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let stream = TcpStream::connect(server.addr()).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let connect = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream);
    tokio::time::timeout(STEP, connect)
        .await
        .expect("handshake in time")
}

fn certificate_error(error: &std::io::Error) -> Option<&CertificateError> {
    match error.get_ref()?.downcast_ref::<TlsError>()? {
        TlsError::InvalidCertificate(e) => Some(e),
        _ => None,
    }
}

async fn tls_server(kind: TlsKind) -> Fake {
    Fake::start(FakeKind::Healthy(HealthyOpts {
        tls: Some(kind),
        ..HealthyOpts::default()
    }))
    .await
}

#[tokio::test]
async fn tls_self_signed_is_untrusted_unless_pinned() {
    let server = tls_server(TlsKind::SelfSigned).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let error = tls_connect(&server, None, "localhost")
        .await
        .expect_err("untrusted");
    assert!(
        matches!(
            certificate_error(&error),
            Some(CertificateError::UnknownIssuer)
        ),
        "{error:?}"
    );
    assert!(server
        .ca_pem()
        .expect("pem")
        .starts_with("-----BEGIN CERTIFICATE-----"));
    for name in ["localhost", "127.0.0.1"] {
        let tls = tls_connect(&server, server.ca_der(), name)
            .await
            .expect("trusted");
        let req = server.request(Method::POST, "/mcp", &[], Some(&initialize(1, V)));
        assert_eq!(
            read(open_on(tls, req).await).await.status,
            StatusCode::OK,
            "{name}"
        );
    }
}

#[tokio::test]
async fn tls_expired_fails_only_on_expiry() {
    let server = tls_server(TlsKind::Expired).await;
    let error = tls_connect(&server, server.ca_der(), "localhost")
        .await
        .expect_err("expired");
    assert!(
        matches!(
            certificate_error(&error),
            Some(CertificateError::Expired | CertificateError::ExpiredContext { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn tls_ca_signed_expires_in_days_left() {
    let server = tls_server(TlsKind::CaSigned { days_left: 10 }).await;
    tls_connect(&server, None, "localhost")
        .await
        .expect_err("the CA is not trusted by default");
    let tls = tls_connect(&server, server.ca_der(), "127.0.0.1")
        .await
        .expect("trusted via the CA");
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
    assert_ne!(
        server.ca_der().expect("ca").as_ref(),
        leaf.as_ref(),
        "the CA is not the leaf"
    );
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).expect("X.509");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let days_left = (parsed.validity().not_after.timestamp() - now) / 86_400;
    assert!((9..=10).contains(&days_left), "{days_left} days left");
    let req = server.request(Method::POST, "/mcp", &[], Some(&initialize(1, V)));
    assert_eq!(read(open_on(tls, req).await).await.status, StatusCode::OK);
}
