//! Prometheus Alertmanager (Debian's `prometheus-alertmanager`, installed by `scripts/test.sh --apt`), started
//! on 127.0.0.1 with the caller's configuration: the web API on a port the OS picks (read back from its
//! `msg="Listening on" address=127.0.0.1:PORT` log line), clustering off (`--cluster.listen-address=` empty, so
//! no gossip port on any interface), and its state in a temporary directory removed on drop.

use std::process::Command;

use crate::process::ChildGuard;

/// Where Debian installs the binary.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// The log line prefix Alertmanager (exporter-toolkit) writes once its web listener is bound.
const ANNOUNCE: &str = "msg=\"Listening on\" address=127.0.0.1:";

/// A running Alertmanager. Dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct Alertmanager {
    /// `http://127.0.0.1:PORT`, no trailing slash: the API is `{base}/api/v2/…`.
    pub base: String,
    /// The process; its output tail helps failure messages.
    pub guard: ChildGuard,
    /// Config file and `--storage.path`.
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with `config_yaml` (an `alertmanager.yml`).
    ///
    /// # Panics
    /// If the binary is missing ("install prometheus-alertmanager", as `scripts/test.sh` does), the config is
    /// refused, or it does not listen within [`super::STARTUP_PATIENCE`] (the message has its output tail).
    pub async fn start(config_yaml: &str) -> Alertmanager {
        assert!(
            std::path::Path::new(ALERTMANAGER_BIN).exists(),
            "{ALERTMANAGER_BIN} is missing: apt-get install prometheus-alertmanager (scripts/test.sh installs it)"
        );
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_yaml).expect("writing the Alertmanager config");
        let mut cmd = Command::new(ALERTMANAGER_BIN);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug");
        let mut guard = ChildGuard::spawn("alertmanager", cmd).unwrap_or_else(|e| panic!("{e}"));
        let addr = super::announced_addr(&mut guard, ANNOUNCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Alertmanager {
            base: format!("http://{addr}"),
            guard,
            dir,
        }
    }

    /// Its state directory (config and storage).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
