//! The processes a cluster runs: [`Proc`] (a restartable child), [`Service`] (a Switchyard
//! service with a `/ready` port) and [`Backend`] (a private NATS or Redis).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::STARTUP;

/// One child process with its command line kept, so it can be started again on the same
/// ports. stdout and stderr both go to `log` (appended across restarts).
pub struct Proc {
    pub name: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub(super) fn new(
        name: &str,
        program: &str,
        args: &[String],
        env: Vec<(String, String)>,
    ) -> Proc {
        Proc {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            env,
            log: PathBuf::new(),
            child: None,
        }
    }

    /// Starts the process (again). Panics if it is still running.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open log {}: {e}", self.log.display()));
        let _ = writeln!(log, "==== starting {} {:?} ====", self.program, self.args);
        let err = log.try_clone().expect("clone log file handle");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // The services read SWITCHYARD_* as config overrides: only ours may reach them.
        for (var, _) in std::env::vars() {
            if var.starts_with("SWITCHYARD_") {
                cmd.env_remove(var);
            }
        }
        // Plain text logs: they are read as files.
        cmd.env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({}): {e}", self.name, self.program));
        self.child = Some(child);
    }

    /// SIGKILL (kill -9) and reap. Does nothing if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP: the process keeps its sockets but does nothing (a long GC pause, a frozen
    /// VM), so peers see silence rather than a closed connection. [`Proc::kill`] still works.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`Proc::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("cannot SIG{name} {}: not running", self.name));
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{name} for {}: {e}", self.name));
        assert!(
            status.success(),
            "kill -{name} {pid} ({}) failed",
            self.name
        );
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The exit status if the process has ended by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Switchyard service: its process, its main port and the port serving `/ready`.
pub struct Service {
    pub proc: Proc,
    pub port: u16,
    pub ready_port: u16,
}

impl Service {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the process again with the same config and ports and waits until it is ready.
    pub async fn restart(&mut self) {
        self.proc.kill();
        self.proc.start();
        self.wait_ready(STARTUP).await;
    }

    /// Waits until `/ready` answers 200 (panics with the log tail if the process dies or the
    /// bound passes).
    pub async fn wait_ready(&mut self, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "{} exited ({status}) before it was ready; log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            if http_status(self.ready_port, "/ready", Duration::from_secs(1)).await == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready within {bound:?}; log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status of `GET /ready` (None: no answer within 5 s).
    pub async fn ready_status(&self) -> Option<u16> {
        http_status(self.ready_port, "/ready", Duration::from_secs(5)).await
    }
}

/// A private nats-server or redis-server on a fixed port.
pub struct Backend {
    pub proc: Proc,
    pub port: u16,
}

impl Backend {
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    pub async fn start(&mut self) {
        self.proc.kill();
        self.proc.start();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "{} exited ({status}); log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not accept connections on {}; log tail:\n{}",
                self.proc.name,
                self.port,
                self.proc.tail(40)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The status of `GET path` on 127.0.0.1:`port`, or None when nothing answers within `bound`.
pub async fn http_status(port: u16, path: &str, bound: Duration) -> Option<u16> {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(bound, probe).await.ok().flatten()
}
