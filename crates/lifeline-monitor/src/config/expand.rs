//! `${NAME}` expansion in configuration strings (secrets come from the environment, never the file).
//! `$$` is a literal `$`. An unset variable is an error naming it; a `$` not followed by `{` or `$` is kept.

/// Expands `${NAME}` in `input` with `lookup`. The error is the message to put after the field path.
pub(crate) fn expand(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated `${` (write `$$` for a literal `$`)".to_owned())?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_owned())
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("Bearer ${TOKEN}", Ok("Bearer s3cret")),
            ("${TOKEN}${TOKEN}", Ok("s3crets3cret")),
            ("cost $$5 and $x", Ok("cost $5 and $x")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            (
                "${TOKEN",
                Err("unterminated `${` (write `$$` for a literal `$`)"),
            ),
            (
                "${BAD-NAME}",
                Err("`${BAD-NAME}` is not a valid environment variable name"),
            ),
        ];
        for (input, want) in cases {
            let got = expand(input, &env);
            assert_eq!(
                got.as_deref(),
                want.map_err(|e| e.to_owned()).as_deref(),
                "{input}"
            );
        }
    }
}
