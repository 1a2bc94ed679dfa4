//! The text format: one URL per line, `#` comments, blank lines ignored.

use std::io::BufRead;

use super::{read_bounded_line, InputError, RawEntry, SkipReason};

pub(super) fn read(
    mut reader: Box<dyn BufRead + Send>,
    name: &str,
    emit: &mut dyn FnMut(RawEntry) -> bool,
) -> Result<(), InputError> {
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        let cut = match read_bounded_line(&mut *reader, &mut buf) {
            Ok(Some(cut)) => cut,
            Ok(None) => return Ok(()),
            Err(source) => {
                return Err(InputError::Io {
                    path: name.to_owned(),
                    source,
                })
            }
        };
        line_no += 1;
        let location = format!("line {line_no}");
        let line = String::from_utf8_lossy(&buf);
        if cut {
            let keep = emit(RawEntry::Skip {
                location,
                text: line.into_owned(),
                why: SkipReason::InvalidUrl(format!(
                    "line longer than {} bytes",
                    super::MAX_ENTRY_BYTES
                )),
            });
            if !keep {
                return Ok(());
            }
            continue;
        }
        let Some(entry) = strip(&line) else { continue };
        if !emit(RawEntry::Url {
            location,
            text: entry.to_owned(),
            name: None,
        }) {
            return Ok(());
        }
    }
}

/// The URL on a line, without comments and surrounding blanks; `None` for a blank or comment line. A `#` starts
/// a comment at the start of the line or after whitespace (a URL fragment follows the URL without a blank).
fn strip(line: &str) -> Option<&str> {
    let line = line.trim_start_matches('\u{feff}');
    let mut end = line.len();
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            end = i;
            break;
        }
    }
    let entry = line[..end].trim();
    (!entry.is_empty()).then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn comments_and_blanks() {
        assert_eq!(
            strip("https://a.example/mcp\n"),
            Some("https://a.example/mcp")
        );
        assert_eq!(
            strip("  https://a.example/mcp   # prod\r\n"),
            Some("https://a.example/mcp")
        );
        assert_eq!(
            strip("https://a.example/mcp#frag"),
            Some("https://a.example/mcp#frag")
        );
        assert_eq!(strip("# just a comment"), None);
        assert_eq!(strip("   \t\n"), None);
        assert_eq!(strip("   # indented comment"), None);
    }
}
