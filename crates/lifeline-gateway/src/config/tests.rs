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
/// A `read_file` serving `files` by path.
fn files<'a>(files: &'a [(&'a str, &'a str)]) -> impl Fn(&Path) -> std::io::Result<String> + 'a {
    move |path| {
        files
            .iter()
            .find(|(p, _)| Path::new(p) == path)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

const KEY_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")

#[test]
fn the_auth_block_validates_into_typed_config_with_secrets_redacted() {
    let yaml = r#"
upstream: http://127.0.0.1:3000/mcp
auth:
  resource: https://mcp.example.com/mcp
  jwt:
    - issuer: https://login.example.com
      jwks_url: https://login.example.com/jwks
    - issuer: https://other.example.com/tenant
      audiences: [api://mcp]
  introspection:
    - url: https://login.example.com/introspect
      client_id: lifeline-gateway
      client_secret_file: /run/secrets/introspection
      auth_method: client_secret_post
  api_keys_file: /run/secrets/api-keys
  scopes_supported: [mcp:read, mcp:write]
  tools:
    - match: "delete_*"
      require_scopes: [mcp:write]
  rate_limit: { per_principal: 20/s, burst: 40 }
  forward_identity: true
"#;
    let keys = format!("# machine clients\nci sha256:{KEY_HASH} mcp:read\n");
    let table = [
        ("/run/secrets/introspection", "s3cret\n"),
        ("/run/secrets/api-keys", keys.as_str()),
    ];
    let read = files(&table);
    let cfg = RawConfig::parse(yaml, FileFormat::Yaml)
        .expect("yaml")
        .validate(&read)
        .expect("valid");
    let auth = cfg.auth.as_ref().expect("auth on");
    assert_eq!(
        auth.resource.as_deref(),
        Some("https://mcp.example.com/mcp")
    );
    assert_eq!(auth.jwt[0].audiences, ["https://mcp.example.com/mcp"]);
    assert_eq!(auth.jwt[1].audiences, ["api://mcp"]);
    assert_eq!(auth.introspection[0].client_secret.expose(), "s3cret");
    assert_eq!(
        auth.introspection[0].auth_method,
        ClientAuthMethod::ClientSecretPost
    );
    let keys = &auth.api_keys.as_ref().expect("keys").keys;
    assert_eq!(
        (keys[0].name.as_str(), keys[0].scopes.as_slice()),
        ("ci", &["mcp:read".to_owned()][..])
    );
    assert!(auth.tools[0].pattern.matches("delete_file"));
    let rl = auth.rate_limit.as_ref().expect("rate limit");
    assert_eq!(
        (rl.per_principal.count.get(), rl.per_principal.per, rl.burst),
        (20, Duration::from_secs(1), 40)
    );
    assert!(auth.forward_identity);
    let effective = cfg.redacted().to_string();
    assert!(
        !effective.contains("s3cret") && !effective.contains(KEY_HASH),
        "{effective}"
    );
    assert!(
        effective.contains(r#""client_secret":"<redacted>""#),
        "{effective}"
    );
    assert!(effective.contains(r#""api_keys":1"#), "{effective}");
    assert!(
        effective.contains(r#""per_principal":"20/1s""#),
        "{effective}"
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
fn a_ready_port_is_read_from_the_file_and_shown_in_the_effective_config() {
    let cfg = RawConfig::parse(
        "upstreams:\n  - url: http://a:1/mcp\n    ready_port: 9091\n  - url: http://b:1/mcp\n",
        FileFormat::Yaml,
    )
    .expect("parses")
    .validate(&no_files)
    .expect("valid");
    let eps = &cfg.upstream.pool.endpoints;
    assert_eq!((eps[0].ready_port, eps[1].ready_port), (Some(9091), None));
    let json = serde_json::to_value(&cfg).expect("serializes");
    assert_eq!(json["upstreams"][0]["ready_port"], 9091);
    assert!(json["upstreams"][1].get("ready_port").is_none(), "{json}");
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
        (
            RawConfig {
                upstreams: Some(vec![
                    entry("http://a/mcp"),
                    RawEndpoint {
                        ready_port: Some(0),
                        ..entry("http://b/mcp")
                    },
                ]),
                ..RawConfig::default()
            },
            "upstreams[1].ready_port",
        ),
        (
            // One static endpoint is never health-checked in the background: its ready_port would be ignored.
            RawConfig {
                upstreams: Some(vec![RawEndpoint {
                    ready_port: Some(9091),
                    ..entry("http://a/mcp")
                }]),
                ..RawConfig::default()
            },
            "upstreams[0].ready_port",
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

#[test]
fn no_auth_block_means_no_auth() {
    let cfg = base().validate(&no_files).expect("valid");
    assert!(cfg.auth.is_none());
    assert!(!cfg.redacted().to_string().contains("\"auth\""));
}

#[test]
fn every_auth_problem_is_reported_with_its_path() {
    let yaml = r#"
upstream: http://127.0.0.1:3000/mcp
forward_authorization: true
auth:
  resource: "https://mcp.example.com/mcp#frag"
  jwt:
    - jwks_url: not a url
    - issuer: https://login.example.com?x=1
  introspection:
    - url: https://login.example.com/introspect
      client_secret_file: /missing
  api_keys_file: /run/secrets/api-keys
  scopes_supported: [offline_access, "bad scope"]
  tools:
    - require_scopes: [mcp:write]
    - match: "bad name!"
  rate_limit: { per_principal: fast }
  clock_skew: 1h
"#;
    let keys = "ci sha256:abc\nbot\nci2 test\n";
    let table = [("/run/secrets/api-keys", keys)];
    let read = files(&table);
    let err = RawConfig::parse(yaml, FileFormat::Yaml)
        .expect("yaml")
        .validate(&read)
        .expect_err("invalid");
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "auth.resource",
        "auth.jwt[0].issuer",
        "auth.jwt[0].jwks_url",
        "auth.jwt[1].issuer",
        "auth.introspection[0].client_id",
        "auth.introspection[0].client_secret_file",
        "auth.api_keys_file:1",
        "auth.api_keys_file:2",
        "auth.api_keys_file:3",
        "auth.scopes_supported[0]",
        "auth.scopes_supported[1]",
        "auth.tools[0].match",
        "auth.tools[1].match",
        "auth.rate_limit.per_principal",
        "auth.clock_skew",
        "forward_authorization",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
}

#[test]
fn auth_flags_turn_auth_on_and_win_over_the_block() {
    let file = RawConfig::parse(
        "upstream: http://a/mcp\nauth:\n  resource: https://file.example.com/mcp\n  api_keys_file: /k\n",
        FileFormat::Yaml,
    )
    .expect("yaml");
    let flags = RawConfig {
        auth_resource: Some("https://flag.example.com/mcp".into()),
        auth_issuers: Some(vec!["https://login.example.com".into()]),
        ..RawConfig::default()
    };
    let keys = format!("ci sha256:{KEY_HASH}\n");
    let table = [("/k", keys.as_str())];
    let cfg = file.merge(flags).validate(&files(&table)).expect("valid");
    let auth = cfg.auth.expect("auth on");
    assert_eq!(
        auth.resource.as_deref(),
        Some("https://flag.example.com/mcp")
    );
    assert_eq!(auth.jwt[0].issuer, "https://login.example.com");
    assert_eq!(auth.jwt[0].audiences, ["https://flag.example.com/mcp"]);
    // Audiences cannot be taken from the request.
    let err = RawConfig {
        auth_issuers: Some(vec!["https://login.example.com".into()]),
        ..base()
    }
    .validate(&no_files)
    .expect_err("no audience");
    assert_eq!(err.0[0].path, "auth_issuer[0].audiences");
}

#[test]
fn tool_patterns_match_with_wildcards() {
    let cases = [
        ("delete_*", "delete_file", true),
        ("delete_*", "delete_", true),
        ("delete_*", "undelete_file", false),
        ("*_admin", "user_admin", true),
        ("*_admin", "user_admins", false),
        ("*", "anything", true),
        ("get-sum", "get-sum", true),
        ("get-sum", "get-sums", false),
        ("a*b*c", "a--b--c", true),
        ("a*b*c", "a--c--b", false),
        ("a*a", "a", false),
    ];
    for (pattern, name, want) in cases {
        assert_eq!(
            ToolPattern::new(pattern).matches(name),
            want,
            "{pattern} vs {name}"
        );
    }
}

#[test]
fn ready_transaction_and_dependencies_are_held_to_what_readiness_may_do() {
    let one_step =
        "allow_tools: [search]\ntransactions: [{name: t, timeout: 1m, steps: [{tool: search}]}]";
    let files = |text: &'static str| move |_: &Path| Ok(text.to_owned());
    let cfg = RawConfig {
        ready_transaction: Some("/etc/t.yaml".into()),
        ready_dependencies: Some(vec![RawDependency {
            url: "https://db.example/health?key=k".into(),
            expect_status: Some(204),
            timeout: Some("30s".into()),
        }]),
        ..base()
    }
    .validate(&files(one_step))
    .expect("valid");
    let set = cfg.probes.ready_transaction.as_ref().expect("the step");
    // Capped by --ready-timeout (default 3 s), like each dependency's timeout.
    assert_eq!(set.transactions[0].timeout, DEFAULT_READY_TIMEOUT);
    let dep = &cfg.probes.ready_dependencies[0];
    assert_eq!(
        (dep.expect_status, dep.timeout),
        (204, DEFAULT_READY_TIMEOUT)
    );
    let shown = cfg.redacted();
    assert_eq!(
        shown["ready_dependencies"][0]["url"],
        "https://db.example/health"
    );
    assert_eq!(shown["ready_transaction"]["allow_tools"][0], "search");

    // (transaction file, or a dependency URL, and the error)
    let cases: &[(&'static str, &str, &str)] = &[
        (
            "allow_tools: [search, fetch]\ntransactions: [{name: t, steps: [{tool: search}, {tool: fetch}]}]",
            "http://h/x",
            "ready_transaction: /etc/t.yaml: must hold one transaction of one tool step",
        ),
        (
            "allow_tools: [search]\nallow_side_effects: true\ntransactions: [{name: t, steps: [{tool: search}]}]",
            "http://h/x",
            "ready_transaction: /etc/t.yaml: allow_side_effects must be false",
        ),
        (
            "transactions: [{name: t, steps: [{tool: search}]}]",
            "http://h/x",
            "ready_transaction: /etc/t.yaml: transactions[0].steps[0].tool: the safety gate refuses \"search\"",
        ),
        (one_step, "ftp://h/x", "ready_dependencies[0].url: must be an http:// or https:// URL"),
    ];
    for (text, url, want) in cases {
        let err = RawConfig {
            ready_transaction: Some("/etc/t.yaml".into()),
            ready_dependencies: Some(vec![RawDependency {
                url: (*url).to_owned(),
                expect_status: None,
                timeout: None,
            }]),
            ..base()
        }
        .validate(&files(text))
        .expect_err(want);
        assert!(err.to_string().contains(want), "{err}\nwant: {want}");
    }
    let err = RawConfig {
        ready_transaction: Some("/etc/t.yaml".into()),
        command: Some(vec!["server".into()]),
        upstream: None,
        ..base()
    }
    .validate(&files(one_step))
    .expect_err("stdio");
    assert!(
        err.to_string()
            .contains("ready_transaction: needs an HTTP upstream"),
        "{err}"
    );
}

#[test]
fn traffic_weights_and_the_admin_token_are_checked() {
    let entries = |groups: &[&str]| {
        Some(
            groups
                .iter()
                .enumerate()
                .map(|(i, g)| RawEndpoint {
                    url: format!("http://127.0.0.1:{}/mcp", 3000 + i),
                    group: Some((*g).to_owned()),
                    ..RawEndpoint::default()
                })
                .collect(),
        )
    };
    let read = |p: &std::path::Path| -> std::io::Result<String> {
        match p.to_str() {
            Some("/short") => Ok("tiny\n".to_owned()),
            Some("/good") => Ok("a-token-long-enough-for-admin\n".to_owned()),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    };
    let weights = |v: &[(&str, u32)]| {
        Some(
            v.iter()
                .map(|(g, w)| ((*g).to_owned(), *w))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    };
    let ok = RawConfig {
        upstreams: entries(&["blue", "green"]),
        traffic: weights(&[("blue", 100)]),
        admin_token_file: Some("/good".into()),
        ..RawConfig::default()
    }
    .validate(&read)
    .expect("valid");
    assert_eq!(
        ok.traffic.weights,
        weights(&[("blue", 100), ("green", 0)]),
        "groups not listed get 0"
    );
    let err = RawConfig {
        upstreams: entries(&["blue", "green"]),
        traffic: weights(&[("blue", 60), ("purple", 40)]),
        admin_token_file: Some("/short".into()),
        ..RawConfig::default()
    }
    .validate(&read)
    .expect_err("invalid")
    .to_string();
    assert!(err.contains("traffic.purple"), "{err}");
    assert!(err.contains("admin_token_file"), "{err}");
    let err = RawConfig {
        upstreams: entries(&["blue", "green"]),
        traffic: weights(&[("blue", 60), ("green", 30)]),
        ..RawConfig::default()
    }
    .validate(&read)
    .expect_err("invalid")
    .to_string();
    assert!(err.contains("add up to 100"), "{err}");
}

#[test]
fn cards_served_ahead_of_auth_warn_until_the_file_says_so() {
    let keys = format!("ci sha256:{KEY_HASH}\n");
    let table = [("/k", keys.as_str())];
    let with = |extra: &str| {
        let text = format!("upstream: http://a/mcp\nauth:\n  resource: https://m.example.com/mcp\n  api_keys_file: /k\n{extra}");
        RawConfig::parse(&text, FileFormat::Yaml)
            .expect("yaml")
            .validate(&files(&table))
            .expect("valid")
            .warnings()
    };
    let w = with("");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("card:") && w[0].contains("card.enabled: false"),
        "{w:?}"
    );
    assert!(with("card:\n  enabled: true\n").is_empty());
    assert!(with("card:\n  enabled: false\n").is_empty());
    // No auth: nothing to warn about.
    assert!(base()
        .validate(&no_files)
        .expect("valid")
        .warnings()
        .is_empty());
}
