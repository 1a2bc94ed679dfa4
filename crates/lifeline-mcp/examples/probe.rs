//! Probes one target and prints the report as JSON: `cargo run -p lifeline-mcp --example probe -- URL` or
//! `... -- --stdio CMD ARGS...`. The product's face is `lifeline check`; this is the library's smallest use.

use lifeline_mcp::probe::{ProbeOptions, StdioCommand, Target};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = match args.first().map(String::as_str) {
        Some("--stdio") if args.len() > 1 => Target::Stdio(StdioCommand {
            program: args[1].clone(),
            args: args[2..].to_vec(),
            inherit_env: true,
            ..StdioCommand::default()
        }),
        Some(url) => match url.parse() {
            Ok(url) => Target::Http(url),
            Err(e) => {
                eprintln!("error: {url:?} is not a URL: {e}");
                std::process::exit(64);
            }
        },
        None => {
            eprintln!("usage: probe URL | probe --stdio CMD [ARGS...]");
            std::process::exit(64);
        }
    };
    let report = lifeline_mcp::probe(&target, &ProbeOptions::default()).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
