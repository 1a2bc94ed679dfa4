//! A target's `auth:` block: validated into [`TargetAuth`] (the OAuth client of `lifeline_mcp::probe::oauth` and
//! the credential expiry dates). No file is read here: secret files are read by the probe when it needs a token,
//! so a rotated Kubernetes Secret is picked up without a restart (`docs/monitor.md` §Authenticated probes).

use std::path::PathBuf;
use std::sync::Arc;

use lifeline_mcp::probe::{
    ClientAuth, CredentialExpiry, CredentialKind, OAuthClient, OAuthConfig, Secret, SecretSource,
};
use url::Url;

use super::raw::RawAuth;
use super::validate::Validator;
use super::TargetAuth;

/// What makes two `auth:` blocks the same credential: they then share one OAuth client, so a rotating refresh
/// token is refreshed by one probe at a time (two refreshes racing revoke the whole family, OAuth 2.0 Security
/// BCP §4.14.2). Held in memory only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CredentialKey(String);

impl Validator<'_> {
    /// Validates `auth` at `path` (`targets[3].auth`). `None` (with errors recorded) when it is invalid.
    pub(super) fn auth(&mut self, path: &str, raw: RawAuth) -> Option<TargetAuth> {
        let before = self.errors.len();
        let text = |v: &mut Self, field: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|s| v.string(&format!("{path}.{field}"), s))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let client_id = text(self, "client_id", &raw.client_id);
        let secret = text(self, "client_secret", &raw.client_secret);
        let secret_file = text(self, "client_secret_file", &raw.client_secret_file);
        let key_file = text(self, "private_key_file", &raw.private_key_file);
        let key_id = text(self, "key_id", &raw.key_id);
        let refresh = text(self, "refresh_token", &raw.refresh_token);
        let refresh_file = text(self, "refresh_token_file", &raw.refresh_token_file);
        let scope = text(self, "scope", &raw.scope);
        let token_url = raw
            .token_url
            .as_deref()
            .and_then(|u| self.url(&format!("{path}.token_url"), u));

        let oauth_fields = [
            ("client_secret", secret.is_some()),
            ("client_secret_file", secret_file.is_some()),
            ("private_key_file", key_file.is_some()),
            ("refresh_token", refresh.is_some()),
            ("refresh_token_file", refresh_file.is_some()),
            ("scope", scope.is_some()),
            ("token_url", token_url.is_some()),
            ("auth_method", raw.auth_method.is_some()),
            (
                "client_secret_expires_at",
                raw.client_secret_expires_at.is_some(),
            ),
        ];
        if client_id.is_none() {
            for (field, given) in oauth_fields {
                if given {
                    self.err(format!("{path}.{field}"), "needs client_id");
                }
            }
        }
        if secret.is_some() && secret_file.is_some() {
            self.err(
                format!("{path}.client_secret_file"),
                "give client_secret or client_secret_file, not both",
            );
        }
        if refresh.is_some() && refresh_file.is_some() {
            self.err(
                format!("{path}.refresh_token_file"),
                "give refresh_token or refresh_token_file, not both",
            );
        }
        let secret_source = secret
            .map(|s| SecretSource::Value(Secret::new(s)))
            .or_else(|| secret_file.map(|f| SecretSource::File(PathBuf::from(f))));
        let refresh_source = refresh
            .map(|s| SecretSource::Value(Secret::new(s)))
            .or_else(|| refresh_file.map(|f| SecretSource::File(PathBuf::from(f))));
        if secret_source.is_some() && key_file.is_some() {
            self.err(
                format!("{path}.private_key_file"),
                "give a client secret or private_key_file, not both",
            );
        }
        if key_id.is_some() && key_file.is_none() {
            self.err(format!("{path}.key_id"), "needs private_key_file");
        }
        let method = raw.auth_method.as_deref().map(str::trim);
        let auth = match (secret_source, &key_file, method) {
            (Some(src), _, None | Some("client_secret_basic")) => {
                Some(ClientAuth::SecretBasic(src))
            }
            (Some(src), _, Some("client_secret_post")) => Some(ClientAuth::SecretPost(src)),
            (None, Some(file), None | Some("private_key_jwt")) => Some(ClientAuth::PrivateKeyJwt {
                key: SecretSource::File(PathBuf::from(file)),
                key_id: key_id.clone(),
            }),
            (None, None, None | Some("none")) => Some(ClientAuth::None),
            (_, _, Some(other)) => {
                self.err(
                    format!("{path}.auth_method"),
                    format!(
                        "`{other}` does not fit the credential given: client_secret_basic or client_secret_post \
                         with a client secret, private_key_jwt with private_key_file, none with only a refresh token"
                    ),
                );
                None
            }
        };
        if client_id.is_some() && matches!(auth, Some(ClientAuth::None)) && refresh_source.is_none()
        {
            self.err(
                format!("{path}.client_id"),
                "needs a credential: client_secret(_file), private_key_file or refresh_token(_file)",
            );
        }

        let mut expiry = Vec::new();
        for (field, kind, value) in [
            (
                "client_secret_expires_at",
                CredentialKind::ClientSecret,
                &raw.client_secret_expires_at,
            ),
            (
                "api_key_expires_at",
                CredentialKind::ApiKey,
                &raw.api_key_expires_at,
            ),
        ] {
            if let Some(v) = text(self, field, value) {
                match CredentialExpiry::parse_date(&v) {
                    Ok(expires_at_unix) => expiry.push(CredentialExpiry {
                        kind,
                        expires_at_unix,
                    }),
                    Err(e) => self.err(format!("{path}.{field}"), e),
                }
            }
        }
        match (&raw.refresh_token_issued_at, &raw.refresh_token_max_age) {
            (Some(issued), Some(max_age)) => {
                let issued = CredentialExpiry::parse_date(issued)
                    .map_err(|e| self.err(format!("{path}.refresh_token_issued_at"), e))
                    .ok();
                let age = humantime::parse_duration(max_age.trim())
                    .map_err(|e| {
                        self.err(
                            format!("{path}.refresh_token_max_age"),
                            format!("`{max_age}` is not a duration like \"90d\" ({e})"),
                        )
                    })
                    .ok();
                if let (Some(issued), Some(age)) = (issued, age) {
                    expiry.push(CredentialExpiry {
                        kind: CredentialKind::RefreshToken,
                        expires_at_unix: issued
                            .saturating_add(i64::try_from(age.as_secs()).unwrap_or(i64::MAX)),
                    });
                }
            }
            (None, None) => {}
            (Some(_), None) => self.err(
                format!("{path}.refresh_token_max_age"),
                "refresh_token_issued_at needs refresh_token_max_age (how long the refresh token lives)",
            ),
            (None, Some(_)) => self.err(
                format!("{path}.refresh_token_issued_at"),
                "refresh_token_max_age needs refresh_token_issued_at (when the refresh token was issued)",
            ),
        }
        let warning_days = match raw.warning_days {
            Some(d) if !(0..=3650).contains(&d) => {
                self.err(format!("{path}.warning_days"), "must be between 0 and 3650");
                lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS
            }
            Some(d) => d,
            None => lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS,
        };
        if self.errors.len() != before {
            return None;
        }
        let oauth = match (client_id, auth) {
            (Some(client_id), Some(auth)) => {
                let config = OAuthConfig {
                    auth,
                    refresh_token: refresh_source,
                    scope,
                    token_url,
                    ..OAuthConfig::client_secret(client_id, SecretSource::Value(Secret::new("")))
                };
                Some(self.shared_client(config))
            }
            _ => None,
        };
        if oauth.is_none() && expiry.is_empty() {
            self.err(
                path.to_owned(),
                "is empty: give client_id and a credential, or api_key_expires_at",
            );
            return None;
        }
        Some(TargetAuth {
            oauth,
            expiry,
            warning_days,
        })
    }

    /// The OAuth client for `config`: an earlier target's when it wrote the same credential, else a new one.
    fn shared_client(&mut self, config: OAuthConfig) -> Arc<OAuthClient> {
        let key = credential_key(&config);
        if let Some((_, client)) = self.oauth_clients.iter().find(|(k, _)| *k == key) {
            return Arc::clone(client);
        }
        let client = Arc::new(OAuthClient::new(config));
        self.oauth_clients.push((key, Arc::clone(&client)));
        client
    }
}

fn credential_key(c: &OAuthConfig) -> CredentialKey {
    let source = |s: &SecretSource| match s {
        SecretSource::Value(v) => format!("value:{}", v.expose()),
        SecretSource::File(p) => format!("file:{}", p.display()),
    };
    let auth = match &c.auth {
        ClientAuth::None => "none".to_owned(),
        ClientAuth::SecretBasic(s) => format!("basic {}", source(s)),
        ClientAuth::SecretPost(s) => format!("post {}", source(s)),
        ClientAuth::PrivateKeyJwt { key, key_id } => format!("jwt {} {key_id:?}", source(key)),
    };
    CredentialKey(format!(
        "{}\n{auth}\n{:?}\n{:?}\n{:?}",
        c.client_id,
        c.refresh_token.as_ref().map(source),
        c.scope,
        c.token_url.as_ref().map(Url::as_str)
    ))
}
