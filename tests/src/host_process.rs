//! A `local-host` binary run as a process of its own, for the scenarios that need to crash a host or start it
//! with other settings than the host under test: started on a free 127.0.0.1 port, its output kept beside its
//! data file, and killed (SIGKILL) when dropped, so a failing assertion leaves no process behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::Api;

/// The variable naming the `local-host` binary (an absolute path); the README test command sets it.
pub const LOCAL_HOST_BIN_VAR: &str = "STOREFRONT_LOCAL_HOST_BIN";

/// A free port on 127.0.0.1.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("no free port: {error}"));
    listener.local_addr().map(|addr| addr.port()).unwrap_or_else(|error| panic!("{error}"))
}

/// A running `local-host` process.
pub struct HostProcess {
    child: Child,
}

impl HostProcess {
    /// Starts `bin` on `port` with the data file `data` and `args`, logging to `<data>.<run>.out` and `.err`.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn start(bin: &str, data: &Path, port: u16, run: &str, args: &[&str]) -> Self {
        let log = |stream: &str| {
            std::fs::File::create(data.with_extension(format!("{run}.{stream}"))).unwrap_or_else(|error| panic!("log file: {error}"))
        };
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--data"])
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .unwrap_or_else(|error| panic!("could not start {bin}: {error}"));
        Self { child }
    }

    /// Waits up to `timeout` for the process to end by itself; its exit status if it did.
    pub async fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Kills the process with SIGKILL (no shutdown, no flushing: a crash) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the host behind `api` answers `GET /health`.
///
/// # Panics
/// When it has not after 30 seconds.
pub async fn wait_until_up(api: &Api) {
    for _ in 0..300 {
        if api.client().get(format!("{}/health", api.base())).send().await.is_ok_and(|answer| answer.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the local host at {} did not come up", api.base());
}
