//! Reading the endpoint list: one URL per line, a plain JSON array of URLs, or an MCP registry export, streamed
//! entry by entry so that a list of any length costs the same memory. URLs are normalised and deduplicated here.
//!
//! Formats (detected from the first non-blank byte: `[` or `{` is JSON, anything else text):
//! - text: one URL per line; blank lines and lines starting with `#` are ignored, as is a ` #…` tail.
//! - a JSON array whose items are URL strings or objects `{"url": …, "name": …}`.
//! - the official MCP registry's `GET /v0/servers` answer (also its older shapes): `servers[i].server.remotes[j].url`
//!   (2025-10 and later, each item `{"server": {…}, "_meta": {"io.modelcontextprotocol.registry/official":
//!   {"status": …}}}`) or `servers[i].remotes[j].url` (earlier versions); entries whose status is `deleted` are
//!   skipped, and so are servers without `remotes` (packages only). A single `server.json` document (an object
//!   with `remotes`) works too.
//!
//! A domain instead of a URL (issue 16 §Discovery): a bare host (`example.com`, `example.com:8443`, no scheme, no
//! path) stands for its AI Catalog at `https://HOST/.well-known/ai-catalog.json`, and any `http(s)` URL whose
//! path is `/.well-known/ai-catalog.json` for that catalog (experimental-ext-server-card `docs/discovery.md`
//! §Client Discovery Flow). Both become an [`InputEvent::Domain`]; the scheduler reads the catalog and scans the
//! endpoints its Server Cards list.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use lifeline_mcp::probe::card::CATALOG_PATH;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

mod json;
mod text;

/// Longest accepted entry (a line or a URL string), in bytes; longer ones are skipped as invalid.
pub const MAX_ENTRY_BYTES: usize = 8 * 1024;

/// Where the endpoint list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// A file, read twice: once to count the endpoints (for the progress total), once to scan them.
    Path(PathBuf),
    /// Standard input (`-`), read once; the total is unknown until it ends.
    Stdin,
}

/// One endpoint to scan: a normalised `http`/`https` URL and, from a registry export, the server's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL: scheme and host lower-cased, default port and fragment removed, path kept as written (a trailing
    /// slash is significant).
    pub url: Url,
    /// The registry's server name (`io.github.user/server`), or the `name` of a JSON array item.
    pub name: Option<String>,
}

/// An input entry that is not scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Where it was: `line 12`, `item 3`, `servers[4].remotes[0]`.
    pub location: String,
    /// The entry as written (cut to 200 characters).
    pub entry: String,
    /// Why it is skipped.
    pub why: SkipReason,
}

/// Why an input entry is skipped. Serialised as `{"kind": …, "detail": …}`; the summary's label
/// ([`crate::summary::skip_label`], derived by `strum`) says `credentials_in_url` and `url_template` where the
/// serde `kind` says `credentials` and `template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
#[strum(serialize_all = "snake_case")]
pub enum SkipReason {
    /// Not a URL; the parser's message.
    InvalidUrl(String),
    /// A scheme other than `http` and `https`.
    UnsupportedScheme(String),
    /// The URL carries a user name or password; credentials are never sent to a census target.
    #[strum(serialize = "credentials_in_url")]
    Credentials,
    /// A registry URL template with unresolved `{variables}`.
    #[strum(serialize = "url_template")]
    Template,
    /// The same normalised URL appeared earlier.
    Duplicate,
    /// The registry marks the server `deleted`.
    Deleted,
    /// A registry server without `remotes` (it ships only packages).
    NoRemote,
    /// A JSON item that is neither a URL string nor an object with a `url` string.
    NotAUrl,
}

/// A domain whose AI Catalog lists the endpoints to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The catalog's URL (`https://HOST/.well-known/ai-catalog.json` for a bare host).
    pub catalog: Url,
}

/// What the reader hands to the scheduler, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// The number of unique, valid endpoints the input holds (sent first, for files only).
    Total(u64),
    /// An endpoint to scan.
    Endpoint(Endpoint),
    /// A domain to discover endpoints on, through its AI Catalog.
    Domain(Domain),
    /// An entry that is not scanned.
    Skipped(Skipped),
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file (`-` for standard input).
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The input looked like JSON but is not valid JSON.
    #[error("{path}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Valid JSON of a shape that holds no endpoint list (e.g. a number, or an object without `servers` or
    /// `remotes`).
    #[error("{path}: JSON is neither an array of URLs nor an MCP registry export (no `servers` or `remotes`)")]
    UnknownShape {
        /// The file.
        path: String,
    },
}

/// A raw entry as found in the input, before normalisation.
#[derive(Debug)]
pub(crate) enum RawEntry {
    Url {
        location: String,
        text: String,
        name: Option<String>,
    },
    Skip {
        location: String,
        text: String,
        why: SkipReason,
    },
}

/// Reads `source` and calls `emit` with every event, in order: [`InputEvent::Total`] first for a file, then
/// endpoints and skipped entries as they are read. `emit` returns `false` to stop reading early (no error).
///
/// Blocking: run it on a blocking thread. Memory: one entry at a time plus 16 bytes per unique URL for
/// deduplication.
pub fn read(
    source: &InputSource,
    emit: &mut dyn FnMut(InputEvent) -> bool,
) -> Result<(), InputError> {
    if let InputSource::Path(_) = source {
        let mut dedup = Dedup::default();
        let mut total = 0u64;
        read_raw(source, &mut |raw| {
            if let RawEntry::Url { text, .. } = raw {
                let url = domain_catalog(&text).map_or_else(|| normalise(&text), Ok);
                if url.is_ok_and(|url| dedup.first_time(&url)) {
                    total += 1;
                }
            }
            true
        })?;
        if !emit(InputEvent::Total(total)) {
            return Ok(());
        }
    }
    let mut dedup = Dedup::default();
    read_raw(source, &mut |raw| {
        let event = match raw {
            RawEntry::Skip {
                location,
                text,
                why,
            } => InputEvent::Skipped(Skipped {
                location,
                entry: cut(&text),
                why,
            }),
            RawEntry::Url {
                location,
                text,
                name,
            } => match domain_catalog(&text).map_or_else(|| normalise(&text), Ok) {
                Ok(url) if !dedup.first_time(&url) => InputEvent::Skipped(Skipped {
                    location,
                    entry: cut(&text),
                    why: SkipReason::Duplicate,
                }),
                Ok(url) if is_catalog(&url) => InputEvent::Domain(Domain { catalog: url }),
                Ok(url) => InputEvent::Endpoint(Endpoint { url, name }),
                Err(why) => InputEvent::Skipped(Skipped {
                    location,
                    entry: cut(&text),
                    why,
                }),
            },
        };
        emit(event)
    })
}

/// Parses and normalises one URL as the census does: `http`/`https` only, no credentials, no `{template}`,
/// no fragment; scheme and host lower-cased and default ports removed (by the WHATWG URL rules), path as written.
pub fn normalise(text: &str) -> Result<Url, SkipReason> {
    let text = text.trim();
    if text.contains('{') || text.contains('}') {
        return Err(SkipReason::Template);
    }
    let mut url = Url::parse(text).map_err(|e| SkipReason::InvalidUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SkipReason::UnsupportedScheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SkipReason::Credentials);
    }
    if url.host().is_none() {
        return Err(SkipReason::InvalidUrl("no host".to_owned()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// The catalog URL of a bare host entry (`example.com`, `example.com:8443`, `127.0.0.1:8080`: no scheme, no path,
/// no credentials; a dot or a port, so a stray word is not taken for a host): `https://HOST/.well-known/ai-catalog.json`.
/// `None` for anything else.
pub fn domain_catalog(text: &str) -> Option<Url> {
    let text = text.trim();
    if text.contains(['/', '@', '?', '#', '{', ' ']) || !text.contains(['.', ':']) {
        return None;
    }
    let url = Url::parse(&format!("https://{text}")).ok()?;
    url.host()?;
    url.join(CATALOG_PATH).ok()
}

/// Whether `url` is an AI Catalog's well-known URL (a [`Domain`] entry rather than an endpoint).
pub fn is_catalog(url: &Url) -> bool {
    url.path() == CATALOG_PATH
}

/// The per-host key of the per-host concurrency cap: the host as normalised (a name, or a literal address).
pub fn host_key(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

/// Remembers URLs already seen, as 128-bit prefixes of their SHA-256 (a collision among a billion URLs has a
/// probability around 1e-21).
#[derive(Default)]
struct Dedup(HashSet<[u8; 16]>);

impl Dedup {
    fn first_time(&mut self, url: &Url) -> bool {
        let digest = Sha256::digest(url.as_str().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        self.0.insert(key)
    }
}

fn cut(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX_CHARS).collect();
        s.push('…');
        s
    }
}

fn label(source: &InputSource) -> String {
    match source {
        InputSource::Path(p) => p.display().to_string(),
        InputSource::Stdin => "-".to_owned(),
    }
}

fn open(source: &InputSource) -> Result<Box<dyn BufRead + Send>, InputError> {
    match source {
        InputSource::Path(path) => {
            let file = File::open(path).map_err(|source| io_err(path, source))?;
            Ok(Box::new(BufReader::with_capacity(64 * 1024, file)))
        }
        InputSource::Stdin => Ok(Box::new(BufReader::new(io::stdin()))),
    }
}

fn io_err(path: &Path, source: io::Error) -> InputError {
    InputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads raw entries from one pass over the input.
fn read_raw(
    source: &InputSource,
    emit: &mut dyn FnMut(RawEntry) -> bool,
) -> Result<(), InputError> {
    let mut reader = open(source)?;
    let name = label(source);
    let first = first_significant_byte(&mut reader).map_err(|source| InputError::Io {
        path: name.clone(),
        source,
    })?;
    match first {
        Some(b'[') | Some(b'{') => json::read(reader, &name, emit),
        _ => text::read(reader, &name, emit),
    }
}

/// Skips a UTF-8 byte-order mark and leading whitespace; returns the next byte without consuming it.
fn first_significant_byte(reader: &mut dyn BufRead) -> io::Result<Option<u8>> {
    let mut at_start = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if at_start && buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
            at_start = false;
            continue;
        }
        at_start = false;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let byte = buf[i];
                reader.consume(i);
                return Ok(Some(byte));
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Reads one line of at most [`MAX_ENTRY_BYTES`] into `buf`: `None` at end of input, `Some(true)` when the line
/// was longer (its rest is discarded), `Some(false)` otherwise.
pub(crate) fn read_bounded_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    buf.clear();
    let n = (&mut *reader)
        .take(MAX_ENTRY_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') || buf.len() <= MAX_ENTRY_BYTES {
        return Ok(Some(false));
    }
    // Over-long line: discard the rest of it.
    let mut sink = Vec::new();
    loop {
        sink.clear();
        let m = (&mut *reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut sink)?;
        if m == 0 || sink.last() == Some(&b'\n') {
            break;
        }
    }
    Ok(Some(true))
}

#[cfg(test)]
mod tests;
