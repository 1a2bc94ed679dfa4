//! Sealed session ids: the client-facing `Mcp-Session-Id` as an AEAD token that carries the session's home, so
//! any gateway replica holding the keys can route a session it never saw, with no shared store.
//!
//! **What a token holds** ([`Sealed`]): the label of the pool endpoint that holds the session (its URL, what
//! `Pool::find` takes), the upstream's own session id, and the client's `initialize` params (the JSON text,
//! at most [`MAX_INIT_PARAMS_BYTES`]; larger params are left out and the session cannot be re-initialized
//! elsewhere), which transparent recovery replays on another endpoint.
//!
//! **Format**: `base64url(version 0x01 ‖ nonce[12] ‖ ChaCha20-Poly1305(plaintext) ‖ tag[16])`, no padding
//! (RFC 4648 §5: only visible ASCII, as 2025-11-25 `basic/transports` §Session Management 1 requires). The
//! plaintext is `u16 len ‖ label ‖ u16 len ‖ upstream id ‖ u16 len ‖ params`, big-endian lengths. The nonce
//! is 96 random bits per token (RFC 8439; under one key, 2^32 tokens keep the collision chance below 2^-32).
//! The associated data is `lifeline-session-v1` and, with auth on, the subject of the principal that opened the
//! session: a token used by another principal does not open (2025-11-25 `security_best_practices`
//! §Session Hijacking: bind session ids to user-specific information).
//!
//! **Keys** ([`Sealer`]): the current key seals; opening tries the current key, then the previous one
//! (`session_key_file`, `config/sessions.rs`). A token no key opens is `None`: the proxy answers 404, and the
//! client re-initializes (§Session Management 3–4).

use std::fmt;

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::sessions::SessionKeys;

/// Largest `initialize` params (JSON text) a token carries: 4 KiB. Larger params are not sealed (the session
/// then routes but cannot be re-initialized on another endpoint).
pub(crate) const MAX_INIT_PARAMS_BYTES: usize = 4096;
/// Longest upstream session id or endpoint label a token carries (bytes).
pub(crate) const MAX_FIELD_BYTES: usize = 1024;
/// Longest token accepted from a client (characters): the largest a sealer makes, so anything longer is refused
/// before any decoding.
pub(crate) const MAX_TOKEN_CHARS: usize =
    (1 + NONCE_LEN + 6 + 2 * MAX_FIELD_BYTES + MAX_INIT_PARAMS_BYTES + TAG_LEN).div_ceil(3) * 4;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const AAD_PREFIX: &[u8] = b"lifeline-session-v1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a sealed session id holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// The label of the endpoint holding the session (`EndpointRef::label`); empty for a stdio upstream.
    pub(crate) endpoint: String,
    /// The session id the upstream minted.
    pub(crate) upstream_id: String,
    /// The client's `initialize` params as JSON text; `None` when absent or over [`MAX_INIT_PARAMS_BYTES`].
    pub(crate) init_params: Option<String>,
}

/// Seals and opens session ids with the keys of `session_key_file`.
pub(crate) struct Sealer {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is always a valid ChaCha20-Poly1305 key; `UnboundKey::new` fails only on a wrong length.
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap_or_else(|_| unreachable!()))
}

impl Sealer {
    /// A sealer over `keys`.
    pub(crate) fn new(keys: &SessionKeys) -> Sealer {
        Sealer {
            current: aead(&keys.current),
            previous: keys.previous.as_ref().map(aead),
            rng: SystemRandom::new(),
        }
    }

    /// Seals `s` for the principal `subject` (`None` with auth off). Errors: a field longer than
    /// [`MAX_FIELD_BYTES`], or the system RNG failing.
    pub(crate) fn seal(&self, s: &Sealed, subject: Option<&str>) -> Result<String, &'static str> {
        if s.endpoint.len() > MAX_FIELD_BYTES || s.upstream_id.len() > MAX_FIELD_BYTES {
            return Err("session id or endpoint label too long to seal");
        }
        let params = s
            .init_params
            .as_deref()
            .filter(|p| p.len() <= MAX_INIT_PARAMS_BYTES)
            .unwrap_or("");
        let mut buf = Vec::with_capacity(
            1 + NONCE_LEN + 6 + s.endpoint.len() + s.upstream_id.len() + params.len() + TAG_LEN,
        );
        buf.push(VERSION);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system random number generator failed")?;
        buf.extend_from_slice(&nonce);
        let start = buf.len();
        for field in [
            s.endpoint.as_bytes(),
            s.upstream_id.as_bytes(),
            params.as_bytes(),
        ] {
            buf.extend_from_slice(&(field.len() as u16).to_be_bytes());
            buf.extend_from_slice(field);
        }
        let mut plain = buf.split_off(start);
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                aad(subject).as_aad(),
                &mut plain,
            )
            .map_err(|_| "sealing failed")?;
        buf.extend_from_slice(&plain);
        Ok(B64.encode(&buf))
    }

    /// Opens a token of the principal `subject`; `None` when it is malformed, was sealed for another principal,
    /// or no key (current, then previous) opens it.
    pub(crate) fn open(&self, token: &str, subject: Option<&str>) -> Option<Sealed> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let raw = B64.decode(token).ok()?;
        let (&version, rest) = raw.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = aad(subject);
        let mut work = sealed.to_vec();
        let plain = match open_with(&self.current, nonce, &aad, &mut work) {
            Some(p) => p,
            None => {
                let previous = self.previous.as_ref()?;
                work.clear();
                work.extend_from_slice(sealed);
                open_with(previous, nonce, &aad, &mut work)?
            }
        };
        let mut fields = Fields(plain);
        let endpoint = fields.next()?;
        let upstream_id = fields.next()?;
        let params = fields.next()?;
        if !fields.0.is_empty() {
            return None;
        }
        Some(Sealed {
            endpoint: String::from_utf8(endpoint.to_vec()).ok()?,
            upstream_id: String::from_utf8(upstream_id.to_vec()).ok()?,
            init_params: (!params.is_empty())
                .then(|| String::from_utf8(params.to_vec()).ok())
                .flatten(),
        })
    }
}

/// The associated data: the format's name and the subject.
struct AadBuf(Vec<u8>);

impl AadBuf {
    fn as_aad(&self) -> Aad<&[u8]> {
        Aad::from(self.0.as_slice())
    }
}

fn aad(subject: Option<&str>) -> AadBuf {
    let subject = subject.unwrap_or("");
    let mut v = Vec::with_capacity(AAD_PREFIX.len() + 1 + subject.len());
    v.extend_from_slice(AAD_PREFIX);
    v.push(0);
    v.extend_from_slice(subject.as_bytes());
    AadBuf(v)
}

fn open_with<'a>(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &AadBuf,
    work: &'a mut [u8],
) -> Option<&'a [u8]> {
    key.open_in_place(Nonce::assume_unique_for_key(nonce), aad.as_aad(), work)
        .ok()
        .map(|p| &*p)
}

/// Length-prefixed fields of a plaintext.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (field, rest) = (rest.get(..len)?, rest.get(len..)?);
        self.0 = rest;
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(current: u8, previous: Option<u8>) -> SessionKeys {
        SessionKeys {
            path: "/k".into(),
            current: [current; 32],
            previous: previous.map(|p| [p; 32]),
        }
    }

    fn sample() -> Sealed {
        Sealed {
            endpoint: "http://127.0.0.1:3001/mcp".into(),
            upstream_id: "5f1c0e0a9b8d4a43".into(),
            init_params: Some(r#"{"protocolVersion":"2025-11-25","capabilities":{}}"#.into()),
        }
    }

    #[test]
    fn a_token_opens_to_what_was_sealed_and_is_visible_ascii() {
        let s = Sealer::new(&keys(1, None));
        let t = s.seal(&sample(), None).expect("sealed");
        assert!(t.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{t}");
        assert_eq!(s.open(&t, None), Some(sample()));
        let t2 = s.seal(&sample(), None).expect("sealed");
        assert_ne!(t, t2, "a fresh nonce per token");
    }

    #[test]
    fn rotation_opens_old_tokens_with_the_previous_key() {
        let old = Sealer::new(&keys(1, None));
        let token = old.seal(&sample(), None).expect("sealed");
        let rotated = Sealer::new(&keys(2, Some(1)));
        assert_eq!(rotated.open(&token, None), Some(sample()));
        let dropped = Sealer::new(&keys(3, Some(2)));
        assert_eq!(dropped.open(&token, None), None, "a key no longer listed");
    }

    #[test]
    fn tampered_foreign_or_malformed_tokens_do_not_open() {
        let s = Sealer::new(&keys(1, None));
        let t = s.seal(&sample(), Some("alice")).expect("sealed");
        assert!(s.open(&t, Some("alice")).is_some());
        assert_eq!(s.open(&t, Some("mallory")), None, "bound to its principal");
        assert_eq!(s.open(&t, None), None);
        let mut bytes = t.clone().into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open(&String::from_utf8(bytes).expect("ascii"), Some("alice")),
            None
        );
        for junk in ["", "abc", "not base64 !", &"A".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(s.open(junk, None), None, "{junk:.20}");
        }
    }

    #[test]
    fn oversized_params_are_left_out_and_long_fields_refused() {
        let s = Sealer::new(&keys(1, None));
        let mut big = sample();
        big.init_params = Some("x".repeat(MAX_INIT_PARAMS_BYTES + 1));
        let t = s.seal(&big, None).expect("sealed");
        assert_eq!(s.open(&t, None).and_then(|o| o.init_params), None);
        let mut long = sample();
        long.upstream_id = "y".repeat(MAX_FIELD_BYTES + 1);
        assert!(s.seal(&long, None).is_err());
        let mut max = sample();
        max.endpoint = "e".repeat(MAX_FIELD_BYTES);
        max.upstream_id = "u".repeat(MAX_FIELD_BYTES);
        max.init_params = Some("p".repeat(MAX_INIT_PARAMS_BYTES));
        let t = s.seal(&max, None).expect("sealed");
        assert!(
            t.len() <= MAX_TOKEN_CHARS,
            "{} > {MAX_TOKEN_CHARS}",
            t.len()
        );
        assert_eq!(s.open(&t, None), Some(max));
    }
}

/// Benchmark hooks (feature `test-hooks`, for `benches/sealed_ids.rs`): sealing and opening as the proxy does.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod bench {
    use super::{Sealed, Sealer};
    use crate::config::sessions::SessionKeys;

    /// A [`Sealer`] over a current and an optional previous key.
    pub struct Keyed(Sealer);

    impl Keyed {
        /// Keys as `session_key_file` gives them.
        pub fn new(current: [u8; 32], previous: Option<[u8; 32]>) -> Keyed {
            Keyed(Sealer::new(&SessionKeys {
                path: "bench".into(),
                current,
                previous,
            }))
        }

        /// A token for `endpoint`, `upstream_id` and `params` (JSON text).
        pub fn seal(&self, endpoint: &str, upstream_id: &str, params: &str) -> String {
            let s = Sealed {
                endpoint: endpoint.to_owned(),
                upstream_id: upstream_id.to_owned(),
                init_params: Some(params.to_owned()),
            };
            self.0.seal(&s, None).unwrap_or_default()
        }

        /// Opens `token`; the upstream id's length when it opens (a value the optimizer must keep).
        pub fn open(&self, token: &str) -> Option<usize> {
            self.0.open(token, None).map(|s| s.upstream_id.len())
        }
    }
}
