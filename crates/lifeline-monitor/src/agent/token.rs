//! Agent authentication (issue 14, "Regions"): an agent sends `Authorization: Bearer <token>` (RFC 6750
//! §2.1); the central side stores only the token's SHA-256 (FIPS 180-4), lowercase hex, in the agent's
//! `token_files` ([`crate::config::AgentConfig`]). The files are read at each authentication, so removing one
//! revokes its token at once, and two files let an old and a new token overlap during a rotation.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::AgentConfig;

/// Largest token file read: 4 KiB (a hash is 64 characters; anything larger is not a hash file).
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Why a request is not an agent's. Every variant answers 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// The token matches no readable token file of any agent (unknown, or revoked by removing its file).
    #[error("unknown or revoked agent token")]
    Refused,
}

/// The lowercase hex SHA-256 of `token`: what an operator writes into a token file
/// (`printf %s "$TOKEN" | sha256sum`).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The 32-byte digest in `path`, or `None` when the file is missing, too large, or not 64 hex characters
/// (logged: a broken file must not pass unnoticed, but it accepts nothing).
fn read_hash(path: &Path) -> Option<[u8; 32]> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        tracing::warn!(file = %path.display(), "Agent token file is too large to be a SHA-256; ignored.");
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = [0u8; 32];
    match hex::decode_to_slice(text.trim(), &mut out) {
        Ok(()) => Some(out),
        Err(_) => {
            tracing::warn!(file = %path.display(), "Agent token file does not hold 64 hex characters; ignored.");
            None
        }
    }
}

/// Equality in time independent of where the first difference is.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The agent whose token file holds the SHA-256 of the bearer token in `authorization` (the header's value).
///
/// Errors: [`TokenError::Missing`] without a bearer token, [`TokenError::Refused`] when no agent's readable
/// token file matches.
pub fn authenticate<'a>(
    authorization: Option<&str>,
    agents: &'a [AgentConfig],
) -> Result<&'a AgentConfig, TokenError> {
    let token = authorization
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    agents
        .iter()
        .find(|a| {
            a.token_files
                .iter()
                .filter_map(|f| read_hash(f))
                .any(|h| same(&h, &digest))
        })
        .ok_or(TokenError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_while_its_hash_file_exists_and_two_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("eu-1.sha256");
        let new = dir.path().join("eu-1.next.sha256");
        std::fs::write(&old, format!("{}\n", token_hash("old-token"))).unwrap();
        std::fs::write(&new, token_hash("new-token")).unwrap();
        let agents = vec![AgentConfig {
            name: "eu-1".into(),
            region: "eu-west".into(),
            token_files: vec![old.clone(), new.clone()],
        }];
        let auth = |h: &str| authenticate(Some(h), &agents).map(|a| a.name.clone());
        assert_eq!(auth("Bearer old-token").unwrap(), "eu-1");
        assert_eq!(auth("bearer new-token").unwrap(), "eu-1");
        assert_eq!(auth("Bearer other"), Err(TokenError::Refused));
        assert_eq!(auth("Basic b2xkLXRva2Vu"), Err(TokenError::Missing));
        assert_eq!(
            authenticate(None, &agents).unwrap_err(),
            TokenError::Missing
        );
        // Revoked by removing its file: refused at the next request, no restart.
        std::fs::remove_file(&old).unwrap();
        assert_eq!(auth("Bearer old-token"), Err(TokenError::Refused));
        assert_eq!(auth("Bearer new-token").unwrap(), "eu-1");
        // A file that is not a hash accepts nothing.
        std::fs::write(&new, "new-token").unwrap();
        assert_eq!(auth("Bearer new-token"), Err(TokenError::Refused));
    }
}
