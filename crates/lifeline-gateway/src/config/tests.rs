//! The gateway's config recipe: defaults, layering, validation with every error and its field path, and the
//! redacted effective configuration.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A `read_file` for configs that name no file.
fn no_files(path: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} is not in this test", path.display()),
    ))
}

fn base() -> RawConfig {
    RawConfig {
        upstream: Some(vec!["http://127.0.0.1:3000/mcp".into()]),
        ..RawConfig::default()
    }
}

#[test]
fn defaults_apply() {
    let cfg = base().validate(&no_files).expect("valid");
    assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(cfg.edge.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(cfg.sse_keepalive, Some(Duration::from_secs(15)));
    assert_eq!(cfg.sessions.idle_ttl, Duration::from_secs(1800));
    assert_eq!(cfg.drain.delay, Duration::from_secs(5));
    assert_eq!(cfg.drain.timeout, Duration::from_secs(25));
    assert!(
        cfg.edge.allowed_hosts.is_none(),
        "0.0.0.0 checks no Host by default"
    );
    assert!(!cfg.edge.forward_authorization);
    assert!(cfg.upstream.sse_url.is_none());
}

#[test]
fn loopback_listener_defaults_to_loopback_hosts() {
    let cfg = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..base()
    }
    .validate(&no_files)
    .expect("valid");
    assert_eq!(
        cfg.edge.allowed_hosts.as_deref().map(<[String]>::len),
        Some(3)
    );
}

#[test]
fn sse_upstream_is_detected_from_the_path() {
    let cfg = RawConfig {
        upstream: Some(vec!["http://127.0.0.1:3001/sse".into()]),
        ..RawConfig::default()
    }
    .validate(&no_files)
    .expect("valid");
    assert!(cfg.upstream.mcp_url.is_none());
    assert_eq!(
        cfg.upstream.sse_url.map(String::from).as_deref(),
        Some("http://127.0.0.1:3001/sse")
    );
}

#[test]
fn worker_threads_are_auto_unless_set() {
    let auto = RawConfig {
        upstream: Some(vec!["http://a/mcp".into()]),
        ..RawConfig::default()
    }
    .validate(&no_files)
    .expect("valid");
    assert_eq!(auto.worker_threads, None);
    assert!(auto
        .redacted()
        .to_string()
        .contains(r#""worker_threads":"auto""#));
    let set = RawConfig::parse(
        "upstream: http://a/mcp\nworker_threads: 3\n",
        FileFormat::Yaml,
    )
    .expect("yaml")
    .validate(&no_files)
    .expect("valid");
    assert_eq!(set.worker_threads.map(|n| n.get()), Some(3));
    assert!(set.redacted().to_string().contains(r#""worker_threads":3"#));
}

#[test]
fn layers_merge_in_order() {
    let file = RawConfig::parse(
        "drain_delay: 2s\nmax_sessions: 7\nupstream: http://a/mcp\n",
        FileFormat::Yaml,
    )
    .expect("yaml");
    let env = RawConfig {
        max_sessions: Some(8),
        ..RawConfig::default()
    };
    let flags = RawConfig {
        upstream: Some(vec!["http://b/mcp".into()]),
        ..RawConfig::default()
    };
    let cfg = RawConfig::default()
        .merge(file)
        .merge(env)
        .merge(flags)
        .validate(&no_files)
        .expect("valid");
    assert_eq!(cfg.drain.delay, Duration::from_secs(2));
    assert_eq!(cfg.sessions.max_sessions, 8);
    assert_eq!(
        cfg.upstream.mcp_url.map(String::from).as_deref(),
        Some("http://b/mcp")
    );
}

#[test]
fn toml_parses_and_unknown_keys_fail() {
    let raw = RawConfig::parse(
        "upstream = \"http://a/mcp\"\nready_ttl = \"2s\"\n",
        FileFormat::Toml,
    )
    .expect("toml");
    assert_eq!(raw.ready_ttl.as_deref(), Some("2s"));
    let err = RawConfig::parse("upstream: http://a/mcp\nbogus: 1\n", FileFormat::Yaml).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
    assert_eq!(FileFormat::from_path(Path::new("x.TOML")), FileFormat::Toml);
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(RawConfig, &str)> = vec![
        (RawConfig::default(), "upstream"),
        (
            RawConfig {
                upstream: Some(vec!["ftp://x/".into()]),
                ..base()
            },
            "upstream",
        ),
        (
            RawConfig {
                upstream: Some(vec!["https://x/mcp".into()]),
                ..base()
            },
            "upstream",
        ),
        (
            RawConfig {
                listen: Some("nowhere".into()),
                ..base()
            },
            "listen",
        ),
        (
            RawConfig {
                drain_delay: Some("10s".into()),
                drain_timeout: Some("5s".into()),
                ..base()
            },
            "drain_timeout",
        ),
        (
            RawConfig {
                upstream_timeout: Some("soon".into()),
                ..base()
            },
            "upstream_timeout",
        ),
        (
            RawConfig {
                allowed_origins: Some(vec!["x".into()]),
                ..base()
            },
            "allowed_origins[0]",
        ),
        (
            RawConfig {
                upstream_headers: Some(vec!["NoColon".into()]),
                ..base()
            },
            "upstream_headers[0]",
        ),
        (
            RawConfig {
                live_stall: Some("10ms".into()),
                ..base()
            },
            "live_stall",
        ),
        (
            RawConfig {
                log_format: Some("xml".into()),
                ..base()
            },
            "log_format",
        ),
        (
            RawConfig {
                mcp_path: Some("mcp".into()),
                ..base()
            },
            "mcp_path",
        ),
        (
            RawConfig {
                max_body_bytes: Some(0),
                ..base()
            },
            "max_body_bytes",
        ),
        (
            RawConfig {
                worker_threads: Some(0),
                ..base()
            },
            "worker_threads",
        ),
    ];
    for (raw, field) in cases {
        let err = raw.clone().validate(&no_files).expect_err(field);
        assert_eq!(err.first_path(), field, "{raw:?} → {err}");
    }
}

#[test]
fn stdio_command_selects_the_stdio_upstream() {
    let read = |path: &Path| {
        assert_eq!(path, Path::new("/run/secrets/child.env"));
        Ok("# comment\nA=from-file\n\nB=x=y\n".to_owned())
    };
    let cfg = RawConfig {
        command: Some(vec!["python".into(), "server.py".into()]),
        env: Some(vec!["A=from-flag".into()]),
        env_file: Some("/run/secrets/child.env".into()),
        ..RawConfig::default()
    }
    .validate(&read)
    .expect("valid");
    let stdio = cfg.stdio.as_ref().expect("stdio");
    assert_eq!(stdio.program, "python");
    assert_eq!(stdio.args, vec!["server.py".to_owned()]);
    assert_eq!(stdio.mode, StdioMode::Session);
    assert_eq!(stdio.pool_size, DEFAULT_POOL_SIZE);
    assert!(!stdio.inherit_env);
    assert_eq!(
        stdio.env,
        vec![
            ("A".into(), "from-file".into()),
            ("B".into(), "x=y".into()),
            ("A".into(), "from-flag".into())
        ]
    );
    assert!(cfg.upstream.mcp_url.is_none());
    let text = cfg.redacted().to_string();
    assert!(!text.contains("from-flag"), "{text}");
    assert!(text.contains("A=<redacted>"), "{text}");
}

#[test]
fn stdio_errors_name_the_field() {
    let cmd = || Some(vec!["server".to_owned()]);
    let cases: Vec<(RawConfig, &str)> = vec![
        (
            RawConfig {
                command: cmd(),
                ..base()
            },
            "command",
        ),
        (
            RawConfig {
                command: cmd(),
                stdio_mode: Some("fork".into()),
                ..RawConfig::default()
            },
            "stdio_mode",
        ),
        (
            RawConfig {
                command: cmd(),
                env: Some(vec!["NOEQUALS".into()]),
                ..RawConfig::default()
            },
            "env[0]",
        ),
        (
            RawConfig {
                command: cmd(),
                pool_size: Some(0),
                ..RawConfig::default()
            },
            "pool_size",
        ),
        (
            RawConfig {
                inherit_env: Some(true),
                ..base()
            },
            "inherit_env",
        ),
        (
            RawConfig {
                command: Some(vec![String::new()]),
                ..RawConfig::default()
            },
            "command[0]",
        ),
    ];
    for (raw, field) in cases {
        let err = raw.clone().validate(&no_files).expect_err(field);
        assert_eq!(err.first_path(), field, "{raw:?} → {err}");
    }
}

#[test]
fn origins_normalize() {
    assert_eq!(
        normalize_origin("HTTPS://App.Example.com/").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        normalize_origin("http://localhost:8080").as_deref(),
        Some("http://localhost:8080")
    );
    assert_eq!(normalize_origin("http://a:80").as_deref(), Some("http://a"));
    assert_eq!(normalize_origin("null"), None);
    assert_eq!(normalize_origin("http://a/path"), None);
}

#[test]
fn header_values_are_secret_in_the_summary() {
    let cfg = RawConfig {
        upstream_headers: Some(vec!["X-Api-Key: hunter2".into()]),
        ..base()
    }
    .validate(&no_files)
    .expect("valid");
    let text = cfg.redacted().to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("x-api-key: <redacted>"), "{text}");
}

#[test]
fn every_error_is_collected_with_its_field_path() {
    let err = RawConfig {
        listen: Some("nowhere".into()),
        drain_delay: Some("10s".into()),
        drain_timeout: Some("5s".into()),
        upstream_headers: Some(vec!["X-Ok: 1".into(), "NoColon".into()]),
        upstream_header_file: Some("/run/secrets/headers".into()),
        log_format: Some("xml".into()),
        ..RawConfig::default()
    }
    .validate(&|_: &Path| Ok("# mounted\nX-A: 1\nbroken\n".to_owned()))
    .expect_err("invalid");
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "upstream",
            "listen",
            "upstream_headers[1]",
            "upstream_header_file:3",
            "drain_timeout",
            "log_format"
        ],
        "{err}"
    );
    assert_eq!(
        err.to_string().lines().count(),
        6,
        "one problem a line: {err}"
    );
}

#[test]
fn unreadable_files_name_the_setting() {
    let err = RawConfig {
        upstream_header_file: Some("/nowhere/headers".into()),
        ..base()
    }
    .validate(&no_files)
    .expect_err("unreadable");
    assert_eq!(err.first_path(), "upstream_header_file");
    assert!(
        err.to_string().contains("cannot read /nowhere/headers"),
        "{err}"
    );
}

#[test]
fn merge_is_generic_over_every_field() {
    // Every field set in the top layer wins, every field unset in it keeps the lower layer's value.
    let lower = RawConfig {
        upstream: Some(vec!["http://a/mcp".into()]),
        env_file: Some("/a".into()),
        inherit_env: Some(true),
        allowed_hosts: Some(vec!["a".into()]),
        ..RawConfig::default()
    };
    let top = RawConfig {
        upstream: Some(vec!["http://b/mcp".into()]),
        pool_size: Some(2),
        #[cfg(feature = "test-hooks")]
        debug_stall_endpoint: true,
        ..RawConfig::default()
    };
    let merged = lower.clone().merge(top);
    assert_eq!(
        merged,
        RawConfig {
            upstream: Some(vec!["http://b/mcp".into()]),
            pool_size: Some(2),
            #[cfg(feature = "test-hooks")]
            debug_stall_endpoint: true,
            ..lower
        }
    );
}

#[test]
fn the_effective_config_has_the_file_keys() {
    let cfg = RawConfig {
        upstream_headers: Some(vec!["X-Api-Key: hunter2".into()]),
        sse_keepalive: Some("0s".into()),
        ..base()
    }
    .validate(&no_files)
    .expect("valid");
    let v = cfg.redacted();
    assert_eq!(v["upstream"], "http://127.0.0.1:3000/mcp");
    assert!(v["upstream_sse"].is_null());
    assert_eq!(v["listen"], DEFAULT_LISTEN);
    assert_eq!(v["mcp_path"], "/mcp");
    assert_eq!(v["allowed_hosts"], serde_json::json!(["*"]));
    assert_eq!(v["max_body_bytes"], DEFAULT_MAX_BODY_BYTES);
    assert_eq!(v["upstream_timeout"], "1m");
    assert_eq!(v["sse_keepalive"], "0s");
    assert_eq!(v["session_idle_ttl"], "30m");
    assert_eq!(v["drain_delay"], "5s");
    assert_eq!(v["drain_timeout"], "25s");
    assert_eq!(v["log_format"], "text");
    assert!(v.get("debug_stall_endpoint").is_none());
    assert!(
        v.get("command").is_none(),
        "no stdio keys for an HTTP upstream"
    );
    assert_eq!(
        v["upstream_headers"],
        serde_json::json!(["x-api-key: <redacted>"])
    );
    // Every typed field lands under a raw (file) key, so the printout can be pasted back into a file.
    let raw_keys = serde_json::to_value(RawConfig::default()).expect("serializes");
    for key in v.as_object().expect("an object").keys() {
        assert!(
            raw_keys.get(key).is_some() || key == "any_origin",
            "{key} is not a config file key"
        );
    }
}

/// The "[default: …]" in each flag's help is hand-written next to the field; this keeps it equal to the
/// constant validation applies.
#[test]
fn help_defaults_match_the_constants() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        raw: RawConfig,
    }
    let help = <Cli as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let default_of = |flag: &str| -> String {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{flag} in --help"));
        let rest = &help[at..];
        let start = rest.find("[default: ").expect("a default") + "[default: ".len();
        let end = rest[start..].find(']').expect("closed") + start;
        rest[start..end].to_owned()
    };
    let durations = [
        ("--upstream-timeout", DEFAULT_UPSTREAM_TIMEOUT),
        ("--sse-keepalive", DEFAULT_SSE_KEEPALIVE),
        ("--sse-retry", DEFAULT_SSE_RETRY),
        ("--session-idle-ttl", DEFAULT_SESSION_IDLE_TTL),
        ("--live-stall", DEFAULT_LIVE_STALL),
        ("--ready-ttl", DEFAULT_READY_TTL),
        ("--ready-timeout", DEFAULT_READY_TIMEOUT),
        ("--drain-delay", DEFAULT_DRAIN_DELAY),
        ("--drain-timeout", DEFAULT_DRAIN_TIMEOUT),
        ("--retry-after", DEFAULT_RETRY_AFTER),
    ];
    for (flag, want) in durations {
        let text = default_of(flag);
        assert_eq!(
            lifeline_core::config::parse_duration(&text),
            Ok(want),
            "{flag} says [default: {text}]"
        );
    }
    let texts = [
        ("--listen", DEFAULT_LISTEN.to_owned()),
        ("--admin-listen", DEFAULT_ADMIN_LISTEN.to_owned()),
        ("--mcp-path", DEFAULT_MCP_PATH.to_owned()),
        ("--sse-path", DEFAULT_SSE_PATH.to_owned()),
        ("--messages-path", DEFAULT_MESSAGES_PATH.to_owned()),
        ("--max-sessions", DEFAULT_MAX_SESSIONS.to_string()),
        ("--pool-size", DEFAULT_POOL_SIZE.to_string()),
    ];
    for (flag, want) in texts {
        assert_eq!(default_of(flag), want, "{flag}");
    }
    assert!(
        default_of("--max-body-bytes").starts_with(&DEFAULT_MAX_BODY_BYTES.to_string()),
        "--max-body-bytes"
    );
}

#[test]
fn a_single_upstream_is_a_pool_of_one_static_endpoint() {
    let cfg = base().validate(&no_files).expect("valid");
    let pool = &cfg.upstream.pool;
    assert_eq!(pool.endpoints.len(), 1);
    assert!(
        !pool.is_pool(),
        "one static endpoint behaves as the gateway always did"
    );
    assert_eq!(pool.endpoints[0].weight, 1);
    assert_eq!(pool.endpoints[0].group, DEFAULT_GROUP);
    assert_eq!(pool.endpoints[0].discovery, Discovery::Static);
    assert_eq!(pool.consecutive_errors, DEFAULT_CONSECUTIVE_ERRORS);
    assert_eq!(
        cfg.upstream.mcp_url.map(String::from).as_deref(),
        Some("http://127.0.0.1:3000/mcp")
    );
}

#[test]
fn upstreams_come_from_repeated_flags_or_the_file() {
    let flags = RawConfig {
        upstream: Some(vec!["http://a:1/mcp".into(), "http://b:2/mcp".into()]),
        ..RawConfig::default()
    }
    .validate(&no_files)
    .expect("valid");
    assert!(flags.upstream.pool.is_pool());
    assert_eq!(flags.upstream.pool.endpoints.len(), 2);

    let file = RawConfig::parse(
        "upstreams:\n  - url: http://a:1/mcp\n    weight: 3\n    group: blue\n  - url: http://replicas.ns.svc:3000/mcp\n    discovery: dns\n    group: green\nupstream_dns_interval: 2s\nupstream_base_ejection_time: 1s\n",
        FileFormat::Yaml,
    )
    .expect("parses")
    .validate(&no_files)
    .expect("valid");
    let eps = &file.upstream.pool.endpoints;
    assert_eq!((eps[0].weight, eps[0].group.as_str()), (3, "blue"));
    assert_eq!(eps[1].discovery, Discovery::Dns);
    assert_eq!(file.upstream.pool.dns_interval, Duration::from_secs(2));
    let json = file.redacted();
    assert_eq!(json["upstreams"][1]["discovery"], "dns");
    assert_eq!(json["upstream_base_ejection_time"], "1s");

    let one = RawConfig::parse("upstream: [http://a:1/mcp]\n", FileFormat::Yaml)
        .expect("a list parses")
        .validate(&no_files)
        .expect("valid");
    assert_eq!(one.upstream.pool.endpoints.len(), 1);
}

#[test]
fn pool_errors_name_the_field() {
    let entry = |url: &str| RawEndpoint {
        url: url.to_owned(),
        ..RawEndpoint::default()
    };
    let cases: Vec<(RawConfig, &str)> = vec![
        (
            RawConfig {
                upstreams: Some(vec![entry("http://a/mcp")]),
                ..base()
            },
            "upstreams",
        ),
        (
            RawConfig {
                upstreams: Some(vec![RawEndpoint {
                    weight: Some(0),
                    ..entry("http://a/mcp")
                }]),
                ..RawConfig::default()
            },
            "upstreams[0].weight",
        ),
        (
            RawConfig {
                upstreams: Some(vec![RawEndpoint {
                    group: Some("Blue!".into()),
                    ..entry("http://a/mcp")
                }]),
                ..RawConfig::default()
            },
            "upstreams[0].group",
        ),
        (
            RawConfig {
                upstreams: Some(vec![RawEndpoint {
                    discovery: Some("dns".into()),
                    ..entry("http://127.0.0.1:1/mcp")
                }]),
                ..RawConfig::default()
            },
            "upstreams[0].discovery",
        ),
        (
            RawConfig {
                upstreams: Some(vec![entry("http://a/mcp"), entry("ftp://b/")]),
                ..RawConfig::default()
            },
            "upstreams[1].url",
        ),
        (
            RawConfig {
                upstream: Some(vec!["http://a/mcp".into(), "http://b/sse".into()]),
                ..RawConfig::default()
            },
            "upstream",
        ),
        (
            RawConfig {
                upstream: Some(vec!["http://a/mcp".into(), "http://b/mcp".into()]),
                upstream_sse: Some("http://a/sse".into()),
                ..RawConfig::default()
            },
            "upstream_sse",
        ),
        (
            RawConfig {
                upstream_base_ejection_time: Some("60s".into()),
                upstream_max_ejection_time: Some("30s".into()),
                ..base()
            },
            "upstream_max_ejection_time",
        ),
        (
            RawConfig {
                upstream_consecutive_errors: Some(0),
                ..base()
            },
            "upstream_consecutive_errors",
        ),
    ];
    for (raw, field) in cases {
        let err = raw.validate(&no_files).expect_err(field);
        assert!(
            err.to_string()
                .lines()
                .any(|l| l.starts_with(&format!("{field}:"))),
            "{field}: {err}"
        );
    }
}
