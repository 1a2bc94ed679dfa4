//! `session_key_file` (`--session-key-file`, `LIFELINE_SESSION_KEY_FILE`): the keys that seal the client-facing
//! `Mcp-Session-Id` (see `sessions/seal.rs` and `docs/gateway-replicas.md` §Sealed session ids).
//!
//! The file (a Kubernetes Secret mounted as a file) holds one key per line, each 64 hex digits (32 bytes,
//! `openssl rand -hex 32`): the first line is the **current** key (it seals every new session id), an optional
//! second line the **previous** key (it still opens ids sealed before a rotation). Blank lines and lines starting
//! with `#` are skipped; more than two keys, a key of another length or a non-hex digit are errors naming the
//! line, never showing the text.

use std::fmt;
use std::path::{Path, PathBuf};

use lifeline_core::FieldErrors;
use serde::{Serialize, Serializer};

use super::ReadFile;

/// Most keys a key file may hold: the current one and the previous one.
pub const MAX_SESSION_KEYS: usize = 2;

/// The session keys read from `session_key_file`: `current` seals, `current` then `previous` open.
/// `Debug` and `Serialize` show the file's path, never a key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Where the keys were read from (shown by `--check-config`).
    pub path: PathBuf,
    /// The current key (the file's first key line).
    pub current: [u8; 32],
    /// The previous key (the second key line), still accepted when opening.
    pub previous: Option<[u8; 32]>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("path", &self.path)
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl Serialize for SessionKeys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}

/// Parses the text of a key file (see the module doc). Errors name the line (`line 2: …`) and never contain
/// the text.
pub fn parse_session_keys(path: &Path, text: &str) -> Result<SessionKeys, String> {
    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(MAX_SESSION_KEYS);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if keys.len() == MAX_SESSION_KEYS {
            return Err(format!(
                "line {}: at most {MAX_SESSION_KEYS} keys (the current one, then the previous one)",
                n + 1
            ));
        }
        if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "line {}: a key must be 64 hex digits (32 bytes: openssl rand -hex 32)",
                n + 1
            ));
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(line, &mut key).map_err(|_| format!("line {}: not hex", n + 1))?;
        keys.push(key);
    }
    let mut it = keys.into_iter();
    let current = it.next().ok_or_else(|| {
        "holds no key (one line of 64 hex digits: openssl rand -hex 32)".to_owned()
    })?;
    Ok(SessionKeys {
        path: path.to_owned(),
        current,
        previous: it.next(),
    })
}

/// Reads and checks `session_key_file` when set; errors are pushed under that field.
pub(super) fn validate(
    path: Option<&PathBuf>,
    e: &mut FieldErrors,
    read_file: ReadFile<'_>,
) -> Option<SessionKeys> {
    let path = path?;
    let text = e.check(
        "session_key_file",
        read_file(path).map_err(|err| format!("cannot read {}: {err}", path.display())),
    )?;
    e.check("session_key_file", parse_session_keys(path, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn first_key_is_current_second_is_previous() {
        let p = Path::new("/k");
        let k = parse_session_keys(p, &format!("# rotated 2026-12-07\n{A}\n\n{B}\n")).expect("ok");
        assert_eq!(k.current[1], 1);
        assert_eq!(k.previous.map(|b| b[0]), Some(0xff));
        let k = parse_session_keys(p, A).expect("one key");
        assert!(k.previous.is_none());
        assert!(
            !format!("{k:?}").contains("0001"),
            "Debug never shows a key"
        );
    }

    #[test]
    fn session_key_file_is_read_and_checked_with_the_config() {
        let raw = |file: Option<&str>| crate::config::RawConfig {
            upstream: Some(vec!["http://127.0.0.1:3000/mcp".into()]),
            session_key_file: file.map(PathBuf::from),
            ..crate::config::RawConfig::default()
        };
        let read = |p: &Path| -> std::io::Result<String> {
            match p.to_str() {
                Some("/keys") => Ok(format!("{A}\n{B}\n")),
                Some("/bad") => Ok("short\n".into()),
                _ => Err(std::io::ErrorKind::NotFound.into()),
            }
        };
        let cfg = raw(Some("/keys")).validate(&read).expect("valid");
        let keys = cfg.sessions.keys.as_ref().expect("keys");
        assert!(keys.previous.is_some());
        let shown = serde_json::to_value(&cfg).expect("serializes");
        assert_eq!(
            shown["session_key_file"], "/keys",
            "--check-config shows the path only"
        );
        assert!(raw(None)
            .validate(&read)
            .expect("valid")
            .sessions
            .keys
            .is_none());
        let bad = raw(Some("/bad")).validate(&read).unwrap_err().to_string();
        assert!(
            bad.contains("session_key_file") && bad.contains("line 1"),
            "{bad}"
        );
        let missing = raw(Some("/nope")).validate(&read).unwrap_err().to_string();
        assert!(
            missing.contains("session_key_file: cannot read /nope"),
            "{missing}"
        );
    }

    #[test]
    fn bad_files_are_refused_by_line() {
        let p = Path::new("/k");
        assert!(parse_session_keys(p, "").unwrap_err().contains("no key"));
        let short = parse_session_keys(p, &format!("{A}\nabcd")).unwrap_err();
        assert!(
            short.starts_with("line 2:") && !short.contains("abcd"),
            "{short}"
        );
        let three = parse_session_keys(p, &format!("{A}\n{B}\n{A}")).unwrap_err();
        assert!(three.starts_with("line 3:"), "{three}");
        let not_hex = "g".repeat(64);
        assert!(parse_session_keys(p, &not_hex)
            .unwrap_err()
            .contains("64 hex"));
    }
}
