//! How the bounded vocabularies are stored: a [`Label`] is one value of a [`Vocabulary`] (a verdict, reason,
//! era, event kind or severity), written to a `TEXT` column as its stable label (`"healthy"`, `"http_status"`,
//! …, the same text as its JSON form) and parsed back when read, for SQLite and PostgreSQL alike. A label the
//! code does not know fails the read with a decode error naming it; it never becomes a default.
//!
//! Why a wrapper and not `sqlx::Type` on the enums: `Verdict`, `Reason` and `Era` belong to `lifeline-mcp`,
//! which knows nothing of storage (the orphan rule forbids the impls here, and a `sqlx` feature there would
//! make the protocol crate carry a database driver's traits). The wrapper also reads as its text
//! (`Deref<Target = str>`), so templates and comparisons keep working on the label.

use std::fmt;
use std::ops::Deref;

use lifeline_mcp::{Era, Reason, Verdict};
use serde::de::value::StrDeserializer;
use serde::de::{DeserializeOwned, IntoDeserializer as _};
use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A closed set of values with stable text labels (their serde names).
pub trait Vocabulary: Copy + DeserializeOwned + 'static {
    /// What the values are, for decode errors (`"verdict"`).
    const NAME: &'static str;

    /// The stable label, as serialised.
    fn as_str(self) -> &'static str;

    /// Parses a stored label; `None` for a label this build does not know.
    fn from_label(label: &str) -> Option<Self> {
        let de: StrDeserializer<'_, serde::de::value::Error> = label.into_deserializer();
        Self::deserialize(de).ok()
    }
}

/// One value of a [`Vocabulary`], stored as `TEXT`. Derefs to its label; serialises as it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label<T>(pub T);

/// The kind of a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An incident opened (written by the store with the incident).
    IncidentOpened,
    /// An incident resolved (written by the store with the resolution).
    IncidentResolved,
    /// The tool-schema hash changed; details carry the diff.
    SchemaDrift,
    /// The negotiated protocol version changed.
    ProtocolVersionChanged,
    /// The server's `serverInfo.version` changed.
    ServerVersionChanged,
    /// The certificate crossed a warning threshold (30, 14 or 7 days left).
    CertExpiring,
}

/// How much a stored event matters to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

/// The `INTEGER`/`BIGINT` 0-or-1 columns (`up`, `maintenance`), read into `bool` through
/// `#[sqlx(try_from = "Flag")]`: PostgreSQL will not decode a `BIGINT` as `bool` by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub i64);

impl<T: Vocabulary> Label<T> {
    /// The value.
    pub fn get(self) -> T {
        self.0
    }

    /// The stable label.
    pub fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl<T> From<T> for Label<T> {
    fn from(v: T) -> Self {
        Label(v)
    }
}

impl<T: Vocabulary> Deref for Label<T> {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl<T: Vocabulary> PartialEq<str> for Label<T> {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl<T: Vocabulary> PartialEq<&str> for Label<T> {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl<T: Vocabulary> fmt::Display for Label<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<T: Vocabulary> Serialize for Label<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<T, DB: Database> Type<DB> for Label<T>
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'q, T: Vocabulary, DB: Database> Encode<'q, DB> for Label<T>
where
    &'static str: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        self.0.as_str().encode(buf)
    }
}

impl<'r, T: Vocabulary, DB: Database> Decode<'r, DB> for Label<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&'r str as Decode<'r, DB>>::decode(value)?;
        T::from_label(text)
            .map(Label)
            .ok_or_else(|| format!("unknown {} label `{text}`", T::NAME).into())
    }
}

impl<DB: Database> Type<DB> for Flag
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Flag
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <i64 as Decode<'r, DB>>::decode(value).map(Flag)
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0 != 0
    }
}

/// Implements [`Vocabulary`] through the type's own `as_str`.
macro_rules! vocabulary {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl Vocabulary for $ty {
            const NAME: &'static str = $name;

            fn as_str(self) -> &'static str {
                <$ty>::as_str(self)
            }
        }
    )*};
}

vocabulary!(Verdict => "verdict", Reason => "reason", Era => "era", EventKind => "event kind", Severity => "severity");

impl EventKind {
    /// The stable label (`"schema_drift"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncidentOpened => "incident_opened",
            EventKind::IncidentResolved => "incident_resolved",
            EventKind::SchemaDrift => "schema_drift",
            EventKind::ProtocolVersionChanged => "protocol_version_changed",
            EventKind::ServerVersionChanged => "server_version_changed",
            EventKind::CertExpiring => "cert_expiring",
        }
    }
}

impl Severity {
    /// The stable label (`"info"`, `"warning"`, `"critical"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Vocabulary + Serialize + PartialEq + fmt::Debug>(all: &[T]) {
        for &v in all {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json.as_str(), Some(v.as_str()), "label = serde name");
            assert_eq!(T::from_label(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(Label(v)).unwrap(), json);
        }
        assert_eq!(T::from_label("no_such_label"), None);
    }

    #[test]
    fn labels_round_trip() {
        round_trips(&[
            Verdict::Healthy,
            Verdict::Degraded,
            Verdict::AuthRequired,
            Verdict::Unhealthy,
        ]);
        round_trips(&[Era::Modern, Era::Legacy, Era::Sse]);
        round_trips(&[Reason::ConnectRefused, Reason::HttpStatus, Reason::Slow]);
        round_trips(&[
            EventKind::IncidentOpened,
            EventKind::IncidentResolved,
            EventKind::SchemaDrift,
            EventKind::ProtocolVersionChanged,
            EventKind::ServerVersionChanged,
            EventKind::CertExpiring,
        ]);
        round_trips(&[Severity::Info, Severity::Warning, Severity::Critical]);
    }

    #[test]
    fn a_label_reads_as_its_text() {
        let l = Label(Verdict::AuthRequired);
        assert_eq!(&*l, "auth_required");
        assert!(l == "auth_required");
        assert_eq!(l.to_string(), "auth_required");
        assert_eq!(l.get(), Verdict::AuthRequired);
        assert!(bool::from(Flag(1)) && !bool::from(Flag(0)));
    }
}
