//! Test instances as separate OS processes on loopback ports.
//!
//! The instance process is the test binary itself, run again with only one
//! of its tests selected (`<entry_test> --exact --nocapture
//! --test-threads=1`) and [`INSTANCE_ENV`] set to the instance's name. That
//! entry test is a no-op in a normal test run ([`instance_name`] is `None`);
//! in the child it serves, with [`serve_axum_instance`] or with its own loop
//! over the listener from [`listen`], and never returns.
//!
//! The child binds `127.0.0.1:0` and prints `LISTENING <port>` on stdout;
//! [`InstanceProcess::spawn`] waits for that line (libtest may print its own
//! progress before it on the same line), at most [`READY_TIMEOUT`], and
//! panics with the instance's name if the child exits or never reports. The
//! child's stderr is the parent's, so a panic in the child shows up in the
//! test output; its stdout after that line is read and dropped.
//!
//! The parent holds the write end of the child's stdin: the child exits
//! when it reads end-of-file there, so instances do not outlive their test
//! even when the test process is SIGKILLed. [`InstanceProcess`] sends
//! SIGSTOP / SIGCONT / SIGKILL, and kills and reaps the child when dropped.
//!
//! ```no_run
//! use foresight_testkit::process::{self, InstanceProcess, Signal};
//!
//! // In the test file, marked `#[test]`: the child's entry point.
//! fn instance_process() {
//!     // A no-op in a normal test run.
//!     if process::instance_name().is_some() {
//!         process::serve_axum_instance(async || axum::Router::new());
//!     }
//! }
//!
//! // A test, in the parent.
//! fn a_fault_test() {
//!     let mut instance = InstanceProcess::spawn("instance_process", "alpha", &[("DELAY_US", "1000")]);
//!     let _addr = instance.addr; // 127.0.0.1:<port>
//!     instance.signal(Signal::Stop);
//!     instance.signal(Signal::Cont);
//!     instance.kill(); // SIGKILL, then reaped
//! }
//! # drop((instance_process, a_fault_test));
//! ```

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use foresight_core::{InstanceSpec, Topology};

/// The environment variable that carries the instance's name to the child;
/// set only in instance processes.
pub const INSTANCE_ENV: &str = "FORESIGHT_TEST_INSTANCE";

/// How long [`InstanceProcess::spawn`] waits for the child's `LISTENING`
/// line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

const LISTENING: &str = "LISTENING ";

/// A signal for [`InstanceProcess::signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGSTOP`: the process freezes; its sockets stay open.
    Stop,
    /// `SIGCONT`: a stopped process resumes.
    Cont,
    /// `SIGKILL`: the process dies at once; the kernel closes its sockets.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Stop => "STOP",
            Self::Cont => "CONT",
            Self::Kill => "KILL",
        }
    }
}

/// An instance process: this test binary run again as `entry_test`, with
/// [`INSTANCE_ENV`] set to its name. Killed (SIGKILL) and reaped when
/// dropped.
#[derive(Debug)]
pub struct InstanceProcess {
    /// The instance's name.
    pub name: String,
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    child: Child,
    /// Held open: the child exits when it is closed (see [`listen`]).
    _stdin: ChildStdin,
}

/// The topology of the instance processes, named and addressed as they are.
///
/// # Panics
///
/// When two instances share a name.
pub fn topology(instances: &[InstanceProcess]) -> Topology {
    Topology::from_instances(
        instances
            .iter()
            .map(|i| InstanceSpec::new(i.name.as_str()).with_addr(i.addr)),
    )
    .expect("instances with distinct names")
}

impl InstanceProcess {
    /// Runs `entry_test` of the current test binary as instance `name`,
    /// with `env` added to the environment, and waits until it reports its
    /// port.
    ///
    /// # Panics
    ///
    /// When the process cannot be started, exits before reporting its
    /// port, or does not report it within [`READY_TIMEOUT`].
    pub fn spawn(entry_test: &str, name: &str, env: &[(&str, &str)]) -> Self {
        let exe = std::env::current_exe().expect("the path of the test binary");
        let mut child = Command::new(exe)
            .args([entry_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(INSTANCE_ENV, name)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("instance {name}: cannot start the process: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        let (port_tx, port_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                for line in lines.by_ref().map_while(Result::ok) {
                    // libtest may print its own progress on the same line.
                    let port = line
                        .find(LISTENING)
                        .and_then(|at| line[at + LISTENING.len()..].trim().parse::<u16>().ok());
                    if let Some(port) = port {
                        let _ = port_tx.send(port);
                        break;
                    }
                }
                drop(port_tx);
                // Drained to the end, so the child never blocks on a full
                // pipe or fails on a closed one.
                for _ in lines {}
            })
            .expect("spawn a thread");

        let port = match port_rx.recv_timeout(READY_TIMEOUT) {
            Ok(port) => port,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = exit_status(&mut child);
                panic!(
                    "instance {name} exited before reporting its port ({status}); \
                     is `{entry_test}` an entry test that serves when `{INSTANCE_ENV}` is set?"
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("instance {name} did not report its port within {READY_TIMEOUT:?}");
            }
        };
        Self {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _stdin: stdin,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the process with the `kill` command. Not for a
    /// process already [`kill`](Self::kill)ed: its pid may be reused.
    ///
    /// # Panics
    ///
    /// When `kill` fails (e.g. the process is gone).
    pub fn signal(&self, signal: Signal) {
        let status = Command::new("kill")
            .arg(format!("-{}", signal.name()))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -{} {} (instance {}) failed: {status}",
            signal.name(),
            self.child.id(),
            self.name
        );
    }

    /// Kills the process with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for InstanceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How `child` ended, waiting for it a little: its stdout may close a
/// moment before it exits.
fn exit_status(child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return "closed its stdout, killed".to_owned();
            }
            Err(e) => return format!("unknown status: {e}"),
        }
    }
}

/// The instance's name in an instance process (from [`INSTANCE_ENV`]);
/// `None` in a normal test run.
pub fn instance_name() -> Option<String> {
    std::env::var(INSTANCE_ENV).ok()
}

/// In an instance process: binds `127.0.0.1:0`, reports the port to the
/// parent (`LISTENING <port>` on stdout, flushed) and returns the blocking
/// listener. For Tokio, `set_nonblocking(true)` it and use
/// `tokio::net::TcpListener::from_std`.
///
/// Also makes the process exit when its stdin reaches end-of-file, which is
/// when the parent test process is gone, however it died.
///
/// # Panics
///
/// When no loopback port can be had or stdout is closed.
pub fn listen() -> TcpListener {
    exit_with_parent();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{LISTENING}{port}").expect("report the port");
    out.flush().expect("report the port");
    listener
}

/// In an instance process: builds the app with `make_app` on a
/// current-thread Tokio runtime (so that it may spawn tasks, e.g. a
/// store's invalidation bus), then serves it on the listener of [`listen`]
/// until the process is killed. The parent's `spawn` returns once the app
/// is built.
///
/// # Panics
///
/// When the runtime cannot be built or the server stops.
pub fn serve_axum_instance<F>(make_app: F) -> !
where
    F: AsyncFnOnce() -> Router,
{
    exit_with_parent();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("instance runtime");
    let result = runtime.block_on(serve(make_app()));
    panic!(
        "instance {} stopped serving: {result:?}",
        instance_name().unwrap_or_default()
    );
}

async fn serve(app: impl Future<Output = Router>) -> std::io::Result<()> {
    let app = app.await;
    let listener = listen();
    listener.set_nonblocking(true)?;
    axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await
}

/// Starts, once, a thread that exits the process when stdin reaches
/// end-of-file (or fails): the parent holds the only write end.
fn exit_with_parent() {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        std::thread::Builder::new()
            .name("exit-with-parent".to_owned())
            .spawn(|| {
                let mut stdin = std::io::stdin().lock();
                let mut buf = [0u8; 64];
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                std::process::exit(0);
            })
            .expect("spawn a thread");
    });
}
