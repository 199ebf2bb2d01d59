//! One `redis-server` process.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::port::free_port;

const READY_TIMEOUT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: usize = 5;

/// A `redis-server` on a free port of 127.0.0.1, with its own temporary
/// directory, no persistence by default, killed when dropped.
///
/// Helper methods panic with a clear message when the process cannot be
/// started or does not answer: they are meant for tests.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

/// Options of a [`RedisServer`] before it starts.
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct RedisServerBuilder {
    args: Vec<String>,
    port: Option<u16>,
}

impl RedisServerBuilder {
    /// Adds a configuration directive, e.g. `config("min-replicas-to-write", "1")`.
    pub fn config(mut self, name: &str, value: &str) -> Self {
        self.args.push(format!("--{name}"));
        self.args.extend(value.split(' ').map(str::to_owned));
        self
    }

    /// Makes the server a replica of the server on `port`.
    pub fn replica_of(self, port: u16) -> Self {
        self.config("replicaof", &format!("127.0.0.1 {port}"))
    }

    /// Keeps data across [`RedisServer::restart`] with an append-only file
    /// written at every command.
    pub fn persistent(self) -> Self {
        self.config("appendonly", "yes")
            .config("appendfsync", "always")
    }

    /// Listens on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts the server and waits until it answers `PING`.
    pub fn start(self) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("foresight-redis-")
            .tempdir()
            .expect("create a temporary directory for redis-server");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = self.port.unwrap_or_else(free_port);
            match spawn(port, dir.path(), &self.args) {
                Ok(child) => {
                    return RedisServer {
                        port,
                        dir,
                        args: self.args,
                        child: Some(child),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }
}

impl RedisServer {
    /// Starts a server with the default options.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options for a server.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its working directory (log file `redis.log`, data files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Whether the server answers `PING` now.
    pub fn answers(&self) -> bool {
        ping(self.port)
    }

    /// Kills the process (`SIGKILL`, no shutdown save) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and directory, and waits
    /// until it answers. Kills it first if it is running.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // The port may linger for a moment after the kill.
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("redis-server on port {} did not restart: {e}", self.port)
                }
                Err(_) => sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs `redis-cli -p <port> <args>` and returns its trimmed output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The value of `field` in `INFO <section>`.
    pub fn info(&self, section: &str, field: &str) -> Option<String> {
        let info = self.cli(&["INFO", section]);
        info.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k == field).then(|| v.trim().to_owned())
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.child = Some(spawn(self.port, self.dir.path(), &self.args)?);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(port: u16, dir: &Path, args: &[String]) -> Result<Child, String> {
    let log: PathBuf = dir.join("redis.log");
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--protected-mode", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(["--save", ""])
        // Replicas sync at once instead of after the default 5 s delay.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!("exited: {}", tail.join(" | ")));
        }
        if ping(port) {
            return Ok(child);
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("no answer to PING".to_owned())
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        // `-LOADING` and other errors mean not ready yet.
        Ok(n) => buf[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}
