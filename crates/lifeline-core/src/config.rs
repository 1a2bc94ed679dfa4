//! The shared half of every service's configuration recipe: [`FieldErrors`] collects every problem with its
//! field path (`targets[3].interval: must be at least 5s`) so a file is fixed in one round, [`ConfigError`] is
//! what a rejected configuration returns, and small parsers (durations with units, `Name: value` headers,
//! `KEY=value` environment lines) plus [`ser`] helpers for the redacted effective config.
//!
//! The recipe each service follows: serde/clap raw types (`deny_unknown_fields`, `Option` fields), layered
//! defaults < file < `LIFELINE_*` environment < flags; one `validate` into typed values that collects every
//! error here; the typed config is `Serialize`, with secrets typed as [`crate::Secret`] so the log and
//! `--check-config` redact them. This module reads no files and no environment.

use std::fmt;
use std::time::Duration;

/// The first line `--check-config` prints for a valid configuration, in every service; the effective
/// configuration (secrets redacted) follows as pretty JSON. An invalid one prints every problem one a line on
/// stderr instead and exits 64.
pub const CHECK_OK: &str = "config OK";

/// The whole `--check-config` report for a valid configuration: [`CHECK_OK`], a newline, the effective
/// configuration as pretty JSON and a final newline. The caller writes it to stdout with a fallible write (a
/// closed pipe is an `io::Error`, not a panic, unlike `println!`).
///
/// # Errors
/// The configuration's `Serialize` implementation failing.
pub fn check_ok_report(effective: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    Ok(format!(
        "{CHECK_OK}\n{}\n",
        serde_json::to_string_pretty(effective)?
    ))
}

/// One configuration problem, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `targets[3].interval`, `upstream_headers[0]`, `env_file:2` (a line of a file), or empty for the whole
    /// document.
    pub path: String,
    /// What is wrong, a short sentence without the path.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a configuration was rejected: every problem found, each with its field path; `Display` writes one a
/// line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<FieldError>);

impl ConfigError {
    /// A rejection with a single problem.
    pub fn one(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    /// The first problem's path (empty when there is none).
    pub fn first_path(&self) -> &str {
        self.0.first().map_or("", |e| e.path.as_str())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects problems during validation; [`FieldErrors::finish`] turns them into a result.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// No problems yet.
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records `result`'s error at `path` and gives back its value (`None` on error), so validation goes on.
    pub fn check<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }

    /// How many problems were recorded (to tell whether a sub-tree added any).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value())` when nothing was recorded, else every problem in the order found. `value` runs only when
    /// there were none, so it may unwrap the `Option`s the checks produced through [`Option::unwrap_or_default`]
    /// or defaults.
    ///
    /// Errors: [`ConfigError`] with every recorded problem.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ConfigError(self.0))
        }
    }
}

/// A duration with units (`500ms`, `30s`, `5m`, `2h`, `1d`), surrounding blanks ignored.
///
/// Errors: the message to put after the field path.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{raw:?} is not a duration such as 30s: {e}"))
}

/// A `Name: value` line split at the first colon, both sides trimmed; the name is not empty.
///
/// Errors: the message to put after the field path.
pub fn split_header(line: &str) -> Result<(&str, &str), String> {
    match line.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value.trim())),
        _ => Err("must be 'Name: value'".to_owned()),
    }
}

/// A `KEY=value` environment line: the key is trimmed and may not be empty or hold blanks or NUL; the value is
/// kept as written (it may contain `=`), and may not hold NUL.
///
/// Errors: the message to put after the field path.
pub fn parse_env_line(kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv.split_once('=').ok_or("must be KEY=value")?;
    let k = k.trim();
    if k.is_empty() || k.contains('\0') || v.contains('\0') || k.contains(char::is_whitespace) {
        return Err(format!("{k:?} is not an environment variable name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// The lines of a mounted file of `Name: value` or `KEY=value` lines that carry a setting, each with its
/// 1-based line number: blank lines and `#` comments are skipped, the rest trimmed.
pub fn setting_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// `serialize_with` helpers for the effective config, which is logged and printed by `--check-config`.
pub mod ser {
    use std::time::Duration;

    use serde::Serializer;

    /// A duration as a string with one unit, the way it is written in a file and parsed back by
    /// [`super::parse_duration`]: the largest of `d`, `h`, `m`, `s`, `ms` that holds it whole (`100d`, `90s`,
    /// `1500ms`, `0s`), else humantime's form (`1ms 500us`).
    ///
    /// Errors: the serializer's.
    pub fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// The text [`duration`] writes.
    pub fn format_duration(d: Duration) -> String {
        if d.is_zero() {
            return "0s".to_owned();
        }
        let ms = d.as_millis();
        if d.subsec_nanos() % 1_000_000 == 0 {
            for (unit, size) in [
                ("d", 86_400_000),
                ("h", 3_600_000),
                ("m", 60_000),
                ("s", 1_000),
            ] {
                if ms % size == 0 {
                    return format!("{}{unit}", ms / size);
                }
            }
            return format!("{ms}ms");
        }
        humantime::format_duration(d).to_string()
    }

    /// An optional duration: `None` prints as `0s` (the documented "off" value of the setting).
    ///
    /// Errors: the serializer's.
    pub fn duration_or_off<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        duration(&d.unwrap_or_default(), s)
    }

    /// A value through its `Display` (addresses, URLs, enums with a `Display`).
    ///
    /// Errors: the serializer's.
    pub fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_in_order() {
        let mut errors = FieldErrors::new();
        assert_eq!(
            errors.check("a", parse_duration("5s")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(errors.check("b", parse_duration("soon")), None);
        errors.push("c[0]", "must be 'Name: value'");
        let err = errors.finish(|| ()).expect_err("two problems");
        assert_eq!(err.0.len(), 2);
        assert_eq!(err.first_path(), "b");
        let text = err.to_string();
        assert!(text.starts_with("b: \"soon\" is not a duration"), "{text}");
        assert!(text.ends_with("\nc[0]: must be 'Name: value'"), "{text}");
        assert_eq!(FieldErrors::new().finish(|| 1), Ok(1));
    }

    #[test]
    fn parsers() {
        assert_eq!(split_header(" X-Key :  v: w "), Ok(("X-Key", "v: w")));
        assert!(split_header("nocolon").is_err());
        assert!(split_header(": v").is_err());
        assert_eq!(parse_env_line("A=x=y"), Ok(("A".into(), "x=y".into())));
        assert!(parse_env_line("NOEQUALS").is_err());
        assert!(parse_env_line("A B=1").is_err());
        let lines: Vec<_> = setting_lines("# c\nA=1\n\n  B=2 \n").collect();
        assert_eq!(lines, vec![(2, "A=1"), (4, "B=2")]);
    }

    #[test]
    fn durations_serialize_with_units() {
        #[derive(serde::Serialize)]
        struct S {
            #[serde(serialize_with = "ser::duration")]
            a: Duration,
            #[serde(serialize_with = "ser::duration_or_off")]
            b: Option<Duration>,
        }
        let s = S {
            a: Duration::from_millis(1500),
            b: None,
        };
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            r#"{"a":"1500ms","b":"0s"}"#
        );
        for (d, text) in [
            (Duration::from_secs(100 * 86400), "100d"),
            (Duration::from_secs(48 * 3600), "2d"),
            (Duration::from_secs(30 * 60), "30m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_micros(1500), "1ms 500us"),
        ] {
            assert_eq!(ser::format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d), "{text} parses back");
        }
    }
}
