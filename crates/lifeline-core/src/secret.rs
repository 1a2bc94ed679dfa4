//! [`Secret`]: a string that is never printed. `Debug`, `Display` and `Serialize` all write `<redacted>`, so a
//! secret can sit in any config or options struct and the effective-config log redacts it by type. Built on
//! the `secrecy` crate (the value is zeroized on drop); read it only where it is sent, with
//! [`Secret::expose`].

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// What every printed form of a [`Secret`] shows.
pub const REDACTED: &str = "<redacted>";

/// A secret string (a header value, a token, a routing key, a child's environment value).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_form_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            "\"<redacted>\""
        );
        assert_eq!(s, Secret::from("hunter2"));
    }
}
