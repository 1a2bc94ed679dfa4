use std::io::Write as _;
use std::path::Path;

use super::*;

fn collect(source: &InputSource) -> Result<Vec<InputEvent>, InputError> {
    let mut out = Vec::new();
    read(source, &mut |ev| {
        out.push(ev);
        true
    })?;
    Ok(out)
}

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

fn fixture(name: &str) -> InputSource {
    InputSource::Path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
}

fn urls(events: &[InputEvent]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Endpoint(ep) => Some((ep.url.to_string(), ep.name.clone())),
            _ => None,
        })
        .collect()
}

fn skips(events: &[InputEvent]) -> Vec<(String, SkipReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Skipped(s) => Some((s.location.clone(), s.why.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn normalisation_table() {
    let ok = [
        ("HTTPS://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"),
        (
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/mcp",
        ),
        (
            "http://mcp.example.com:80/mcp/",
            "http://mcp.example.com/mcp/",
        ),
        (
            "http://mcp.example.com:8080/mcp",
            "http://mcp.example.com:8080/mcp",
        ),
        ("https://mcp.example.com", "https://mcp.example.com/"),
        (
            "https://mcp.example.com/mcp#section",
            "https://mcp.example.com/mcp",
        ),
        (
            "  https://mcp.example.com/MCP?x=1  ",
            "https://mcp.example.com/MCP?x=1",
        ),
        ("http://[::1]:3000/mcp", "http://[::1]:3000/mcp"),
    ];
    for (input, want) in ok {
        assert_eq!(normalise(input).unwrap().as_str(), want, "{input}");
    }
    assert!(
        matches!(normalise("ftp://x.example/"), Err(SkipReason::UnsupportedScheme(s)) if s == "ftp")
    );
    assert!(matches!(
        normalise("not a url"),
        Err(SkipReason::InvalidUrl(_))
    ));
    assert_eq!(
        normalise("https://user:pw@x.example/mcp"),
        Err(SkipReason::Credentials)
    );
    assert_eq!(
        normalise("https://{tenant}.x.example/mcp"),
        Err(SkipReason::Template)
    );
    // The trailing slash is significant: two different endpoints.
    assert_ne!(
        normalise("https://x.example/mcp").unwrap(),
        normalise("https://x.example/mcp/").unwrap()
    );
}

#[test]
fn text_list_with_comments_dupes_and_garbage() {
    let f = file(
        "# census list\n\nhttps://a.example/mcp\nHTTPS://A.EXAMPLE:443/mcp   # same one\nhttps://a.example/mcp/\n\
         mailto:x@y\n   https://b.example/mcp\r\nnot a url\n",
    );
    let events = collect(&InputSource::Path(f.path().to_owned())).unwrap();
    assert_eq!(events[0], InputEvent::Total(3));
    assert_eq!(
        urls(&events),
        vec![
            ("https://a.example/mcp".into(), None),
            ("https://a.example/mcp/".into(), None),
            ("https://b.example/mcp".into(), None)
        ]
    );
    let skipped = skips(&events);
    assert_eq!(skipped.len(), 3);
    assert_eq!(skipped[0], ("line 4".into(), SkipReason::Duplicate));
    assert!(matches!(&skipped[1], (l, SkipReason::UnsupportedScheme(_)) if l == "line 6"));
    assert!(matches!(&skipped[2], (l, SkipReason::InvalidUrl(_)) if l == "line 8"));
}

#[test]
fn overlong_line_is_skipped_and_reading_goes_on() {
    let long = format!(
        "https://x.example/{}\nhttps://ok.example/mcp\n",
        "a".repeat(MAX_ENTRY_BYTES * 3)
    );
    let f = file(&long);
    let events = collect(&InputSource::Path(f.path().to_owned())).unwrap();
    assert_eq!(urls(&events), vec![("https://ok.example/mcp".into(), None)]);
    assert!(
        matches!(&skips(&events)[0], (l, SkipReason::InvalidUrl(m)) if l == "line 1" && m.contains("longer"))
    );
}

#[test]
fn plain_json_array() {
    let f = file(
        r#" [ "https://a.example/mcp", {"url": "https://b.example/mcp", "name": "bee"}, 42, "https://a.example/mcp" ] "#,
    );
    let events = collect(&InputSource::Path(f.path().to_owned())).unwrap();
    assert_eq!(events[0], InputEvent::Total(2));
    assert_eq!(
        urls(&events),
        vec![
            ("https://a.example/mcp".into(), None),
            ("https://b.example/mcp".into(), Some("bee".into()))
        ]
    );
    assert_eq!(
        skips(&events),
        vec![
            ("item 2".into(), SkipReason::NotAUrl),
            ("item 3".into(), SkipReason::Duplicate)
        ]
    );
}

#[test]
fn official_registry_export() {
    let events = collect(&fixture("registry-v0.json")).unwrap();
    assert_eq!(events[0], InputEvent::Total(3));
    assert_eq!(
        urls(&events),
        vec![
            (
                "https://weather.example.com/mcp".into(),
                Some("com.example/weather".into())
            ),
            (
                "https://mcp.tickets.example.net/mcp/".into(),
                Some("net.example/tickets".into())
            ),
            (
                "https://mcp.tickets.example.net/sse".into(),
                Some("net.example/tickets".into())
            ),
        ]
    );
    assert_eq!(
        skips(&events),
        vec![
            ("servers[1].remotes[0]".into(), SkipReason::Duplicate),
            ("servers[2].remotes[0]".into(), SkipReason::Deleted),
            ("servers[3]".into(), SkipReason::NoRemote),
            ("servers[5].remotes[0]".into(), SkipReason::Template),
        ]
    );
}

#[test]
fn older_registry_shapes() {
    let events = collect(&fixture("registry-v0-legacy.json")).unwrap();
    assert_eq!(
        urls(&events),
        vec![
            (
                "https://old.example.com/mcp".into(),
                Some("io.example/old-shape".into())
            ),
            (
                "http://v1.example.com:8080/mcp".into(),
                Some("io.example/v1-shape".into())
            ),
        ]
    );
}

#[test]
fn single_server_json() {
    let f = file(
        r#"{"name": "io.x/one", "version": "1", "remotes": [{"type": "sse", "url": "https://one.example/sse"}]}"#,
    );
    let events = collect(&InputSource::Path(f.path().to_owned())).unwrap();
    assert_eq!(
        urls(&events),
        vec![("https://one.example/sse".into(), Some("io.x/one".into()))]
    );
}

#[test]
fn bad_json_and_unknown_shapes_are_errors() {
    let f = file("[\"https://a.example/mcp\",\n  \"https://b.example/mcp\" oops]");
    match collect(&InputSource::Path(f.path().to_owned())) {
        Err(InputError::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    let f = file(r#"{"metadata": {"count": 0}}"#);
    assert!(matches!(
        collect(&InputSource::Path(f.path().to_owned())),
        Err(InputError::UnknownShape { .. })
    ));
    assert!(matches!(
        collect(&InputSource::Path("/nonexistent/list.txt".into())),
        Err(InputError::Io { .. })
    ));
}

#[test]
fn stopping_early_is_not_an_error() {
    let f = file(r#"["https://a.example/1", "https://a.example/2", "https://a.example/3"]"#);
    let mut seen = 0;
    read(&InputSource::Path(f.path().to_owned()), &mut |ev| {
        if matches!(ev, InputEvent::Endpoint(_)) {
            seen += 1;
        }
        seen < 2
    })
    .unwrap();
    assert_eq!(seen, 2);
}

#[test]
fn empty_file_is_an_empty_list() {
    let f = file("\n  \n");
    assert_eq!(
        collect(&InputSource::Path(f.path().to_owned())).unwrap(),
        vec![InputEvent::Total(0)]
    );
}

#[test]
fn bare_hosts_and_catalog_urls_are_domains() {
    let f = file(
        "example.com\n127.0.0.1:8080\nhttp://127.0.0.1:9/.well-known/ai-catalog.json\nhttps://example.com/.well-known/ai-catalog.json\nhttps://example.com/mcp\n",
    );
    let events = collect(&InputSource::Path(f.path().to_owned())).unwrap();
    // The total counts domains once each; the duplicate (the same catalog twice) is skipped.
    assert_eq!(events[0], InputEvent::Total(4));
    let domains: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Domain(d) => Some(d.catalog.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        domains,
        [
            "https://example.com/.well-known/ai-catalog.json",
            "https://127.0.0.1:8080/.well-known/ai-catalog.json",
            "http://127.0.0.1:9/.well-known/ai-catalog.json",
        ]
    );
    assert_eq!(
        urls(&events),
        [("https://example.com/mcp".to_owned(), None)]
    );
    assert!(matches!(&skips(&events)[0], (l, SkipReason::Duplicate) if l == "line 4"));
    assert_eq!(domain_catalog("example.com/mcp"), None);
    assert_eq!(domain_catalog("user@example.com"), None);
    assert_eq!(
        domain_catalog("nope"),
        None,
        "a word without a dot or a port"
    );
}
