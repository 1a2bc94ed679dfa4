//! The JSON formats, parsed as a stream: only one array item (one registry entry) is held in memory at a time.

use std::fmt;
use std::io::BufRead;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{InputError, RawEntry, SkipReason};

/// The `_meta` key under which the official registry puts its own fields (`status`, `isLatest`, …), as a JSON
/// pointer (`/` escaped as `~1`).
const OFFICIAL_STATUS_POINTER: &str = "/_meta/io.modelcontextprotocol.registry~1official/status";

/// Marker error used to unwind the parser when the consumer stops early.
const STOP: &str = "lifeline-scan: reading stopped by the consumer";

struct Ctx<'a> {
    emit: &'a mut dyn FnMut(RawEntry) -> bool,
    stopped: bool,
    saw_list: bool,
}

pub(super) fn read(
    reader: Box<dyn BufRead + Send>,
    name: &str,
    emit: &mut dyn FnMut(RawEntry) -> bool,
) -> Result<(), InputError> {
    let mut ctx = Ctx {
        emit,
        stopped: false,
        saw_list: false,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = Top(&mut ctx).deserialize(&mut de).and_then(|()| de.end());
    if ctx.stopped {
        return Ok(());
    }
    match result {
        Ok(()) if ctx.saw_list => Ok(()),
        Ok(()) => Err(InputError::UnknownShape {
            path: name.to_owned(),
        }),
        Err(err) if err.is_io() => Err(InputError::Io {
            path: name.to_owned(),
            source: std::io::Error::other(err.to_string()),
        }),
        Err(err) => Err(InputError::Json {
            path: name.to_owned(),
            line: err.line(),
            column: err.column(),
            message: strip_position(&err.to_string()),
        }),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl Ctx<'_> {
    fn send<E: de::Error>(&mut self, entry: RawEntry) -> Result<(), E> {
        if (self.emit)(entry) {
            Ok(())
        } else {
            self.stopped = true;
            Err(E::custom(STOP))
        }
    }

    /// One item of a plain array: a URL string, `{"url", "name"}`, or a registry entry.
    fn array_item<E: de::Error>(&mut self, index: usize, item: Value) -> Result<(), E> {
        let location = format!("item {index}");
        match item {
            Value::String(text) => self.send(RawEntry::Url {
                location,
                text,
                name: None,
            }),
            Value::Object(ref obj) if obj.get("url").is_some_and(Value::is_string) => {
                let text = obj
                    .get("url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let name = obj.get("name").and_then(Value::as_str).map(str::to_owned);
                self.send(RawEntry::Url {
                    location,
                    text,
                    name,
                })
            }
            Value::Object(ref obj) if obj.contains_key("server") || obj.contains_key("remotes") => {
                self.server_entry(&location, &item)
            }
            other => self.send(RawEntry::Skip {
                location,
                text: other.to_string(),
                why: SkipReason::NotAUrl,
            }),
        }
    }

    /// One registry entry: `{"server": {…, "remotes": […]}, "_meta": {…}}` or a bare `server.json` object.
    fn server_entry<E: de::Error>(&mut self, location: &str, entry: &Value) -> Result<(), E> {
        let server = entry
            .get("server")
            .filter(|s| s.is_object())
            .unwrap_or(entry);
        let name = server
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let status = entry
            .pointer(OFFICIAL_STATUS_POINTER)
            .or_else(|| server.pointer(OFFICIAL_STATUS_POINTER))
            .or_else(|| server.get("status"))
            .and_then(Value::as_str);
        let deleted = status == Some("deleted");
        let remotes = server
            .get("remotes")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty());
        let Some(remotes) = remotes else {
            let text = name.unwrap_or_default();
            return self.send(RawEntry::Skip {
                location: location.to_owned(),
                text,
                why: SkipReason::NoRemote,
            });
        };
        for (j, remote) in remotes.iter().enumerate() {
            let location = format!("{location}.remotes[{j}]");
            let entry = match remote.get("url").and_then(Value::as_str) {
                Some(url) if deleted => RawEntry::Skip {
                    location,
                    text: url.to_owned(),
                    why: SkipReason::Deleted,
                },
                Some(url) => RawEntry::Url {
                    location,
                    text: url.to_owned(),
                    name: name.clone(),
                },
                None => RawEntry::Skip {
                    location,
                    text: remote.to_string(),
                    why: SkipReason::NotAUrl,
                },
            };
            self.send(entry)?;
        }
        Ok(())
    }
}

/// The document: an array (plain list) or an object (registry answer or `server.json`).
struct Top<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of URLs or an MCP registry export")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.saw_list = true;
        let mut index = 0usize;
        while let Some(item) = seq.next_element::<Value>()? {
            self.0.array_item(index, item)?;
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Only the keys a bare server.json needs are kept; everything else is skipped without being stored.
        let mut single = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "servers" => {
                    self.0.saw_list = true;
                    map.next_value_seed(Servers(&mut *self.0))?;
                }
                "remotes" | "name" | "status" | "_meta" | "server" => {
                    let value = map.next_value::<Value>()?;
                    single.insert(key, value);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if single.contains_key("remotes")
            || single
                .get("server")
                .is_some_and(|s| s.get("remotes").is_some())
        {
            self.0.saw_list = true;
            self.0.server_entry("server", &Value::Object(single))?;
        }
        Ok(())
    }
}

/// The `servers` array of a registry answer.
struct Servers<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Servers<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Servers<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of registry server entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(item) = seq.next_element::<Value>()? {
            self.0.server_entry(&format!("servers[{index}]"), &item)?;
            index += 1;
        }
        Ok(())
    }
}
