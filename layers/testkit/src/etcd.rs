//! A 3-member etcd cluster of local processes.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::port::free_port;

/// Environment variable naming the etcd binary (default `/usr/bin/etcd`,
/// then `etcd` on `PATH`). When set, only that path is tried.
pub const ETCD_BIN_ENV: &str = "FORESIGHT_ETCD";

const MEMBERS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
const HTTP_TIMEOUT: Duration = Duration::from_millis(500);

/// A 3-member etcd cluster on free loopback ports, its data in a temporary
/// directory, every member killed and the directory removed when dropped
/// (also when the test panics).
///
/// Members run with a 50 ms heartbeat and a 500 ms election timeout, so
/// that a new leader is elected within a second of losing the old one.
/// Helpers find the leader, SIGKILL, SIGSTOP / SIGCONT and restart a
/// member; they panic with a clear message when etcd misbehaves: they are
/// meant for tests.
///
/// ```no_run
/// use foresight_testkit::EtcdCluster;
///
/// // `None` (with a message) when etcd is not installed, unless `CI` is set.
/// let Some(mut cluster) = EtcdCluster::start() else { return };
/// let endpoints = cluster.endpoints(); // http://127.0.0.1:<port>, three of them
/// let leader = cluster.wait_leader(None);
/// cluster.kill(leader);
/// let new_leader = cluster.wait_leader(Some(leader));
/// cluster.restart(leader);
/// # drop((endpoints, new_leader));
/// ```
#[derive(Debug)]
pub struct EtcdCluster {
    bin: PathBuf,
    dir: TempDir,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    client_port: u16,
    peer_port: u16,
    id: u64,
    child: Option<Child>,
    stopped: bool,
}

/// The etcd binary, if installed.
fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ETCD_BIN_ENV) {
        let path = PathBuf::from(path);
        return path.exists().then_some(path);
    }
    let default = PathBuf::from("/usr/bin/etcd");
    if default.exists() {
        return Some(default);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|path| path.exists())
    })
}

impl EtcdCluster {
    /// Starts the cluster and waits until every member is healthy and one
    /// is leader.
    ///
    /// Returns `None`, after printing why, when no etcd binary is
    /// installed, unless the environment variable `CI` is set.
    ///
    /// # Panics
    ///
    /// When etcd is missing and `CI` is set, or the cluster does not come
    /// up within 30 s.
    pub fn start() -> Option<Self> {
        let Some(bin) = etcd_binary() else {
            if std::env::var_os("CI").is_some() {
                panic!("etcd is not installed (Debian: etcd-server) and CI is set");
            }
            eprintln!(
                "skipped: etcd is not installed (Debian: etcd-server; or set {ETCD_BIN_ENV})"
            );
            return None;
        };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(bin.clone()) {
                Ok(cluster) => return Some(cluster),
                Err(e) => last = e,
            }
        }
        panic!("etcd cluster did not start: {last}");
    }

    fn try_start(bin: PathBuf) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("foresight-etcd-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let members = (0..MEMBERS)
            .map(|_| Member {
                client_port: free_port(),
                peer_port: free_port(),
                id: 0,
                child: None,
                stopped: false,
            })
            .collect();
        let mut cluster = Self { bin, dir, members };
        for i in 0..MEMBERS {
            cluster.spawn(i, "new")?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..MEMBERS {
            loop {
                if let Some((id, _)) = status(cluster.members[i].client_port) {
                    cluster.members[i].id = id;
                    break;
                }
                if !cluster.is_running(i) {
                    return Err(format!("member {i} exited; see {:?}", cluster.log(i)));
                }
                if Instant::now() > deadline {
                    return Err(format!("member {i} not ready; see {:?}", cluster.log(i)));
                }
                sleep(Duration::from_millis(50));
            }
        }
        cluster.wait_leader(None);
        Ok(cluster)
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let initial: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .map(|(j, m)| format!("m{j}={}", url(m.peer_port)))
            .collect();
        let member = &self.members[i];
        let log = File::create(self.log(i)).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(&self.bin)
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("m{i}.etcd")))
            .args(["--listen-client-urls", &url(member.client_port)])
            .args(["--advertise-client-urls", &url(member.client_port)])
            .args(["--listen-peer-urls", &url(member.peer_port)])
            .args(["--initial-advertise-peer-urls", &url(member.peer_port)])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", "foresight-test"])
            .args(["--initial-cluster-state", state])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", self.bin))?;
        let member = &mut self.members[i];
        member.child = Some(child);
        member.stopped = false;
        Ok(())
    }

    /// The client URLs of every member, `http://127.0.0.1:<port>`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Whether member `i`'s process is running (stopped counts as running).
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.members[i].child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The member that the running, unstopped members say is leader now.
    pub fn leader(&self) -> Option<usize> {
        self.members
            .iter()
            .filter(|m| m.child.is_some() && !m.stopped)
            .filter_map(|m| status(m.client_port))
            .filter_map(|(_, leader)| self.members.iter().position(|m| m.id == leader))
            .next()
    }

    /// Waits until a member other than `not` is leader, and returns it.
    ///
    /// # Panics
    ///
    /// When none is within 30 s.
    pub fn wait_leader(&self, not: Option<usize>) -> usize {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(leader) = self.leader()
                && Some(leader) != not
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no etcd leader (other than {not:?}) within {READY_TIMEOUT:?}"
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Kills member `i` with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.members[i].stopped = false;
    }

    /// Freezes member `i` with SIGSTOP: its sockets stay open, it answers
    /// nothing.
    pub fn stop(&mut self, i: usize) {
        self.signal(i, "STOP");
        self.members[i].stopped = true;
    }

    /// Resumes member `i`, frozen by [`stop`](Self::stop), with SIGCONT.
    pub fn cont(&mut self, i: usize) {
        self.signal(i, "CONT");
        self.members[i].stopped = false;
    }

    fn signal(&self, i: usize, name: &str) {
        let child = self.members[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("etcd member {i} is not running"));
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} etcd member {i}: {status}");
    }

    /// Starts member `i` again on its ports and data (killing it first if
    /// it runs), and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it does not answer within 30 s.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn(i, "existing") {
                Ok(()) => {}
                Err(e) => panic!("etcd member {i} did not restart: {e}"),
            }
            // The ports may linger for a moment after the kill.
            while self.is_running(i) && Instant::now() < deadline {
                if status(self.members[i].client_port).is_some() {
                    return;
                }
                sleep(Duration::from_millis(50));
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} did not restart; see {:?}",
                self.log(i)
            );
            self.kill(i);
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// `(member id, leader id)` from the member's status endpoint, if it
/// answers within the HTTP timeout and has a leader.
fn status(port: u16) -> Option<(u64, u64)> {
    let body = post(port, "/v3/maintenance/status", "{}")?;
    let member = json_number(&body, "\"member_id\":")?;
    let leader = json_number(&body, "\"leader\":")?;
    (leader != 0).then_some((member, leader))
}

/// The number after `field` in a JSON text (the gateway quotes 64-bit
/// integers).
fn json_number(body: &str, field: &str) -> Option<u64> {
    let at = body.find(field)? + field.len();
    let rest = body[at..].trim_start().trim_start_matches('"');
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn post(port: u16, path: &str, body: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_gateway_json() {
        let body = r#"{"header":{"cluster_id":"1","member_id":"42","revision":"7"},"leader":"9"}"#;
        assert_eq!(json_number(body, "\"member_id\":"), Some(42));
        assert_eq!(json_number(body, "\"leader\":"), Some(9));
        assert_eq!(json_number(body, "\"absent\":"), None);
    }
}
