//! A Redis Cluster of `redis-server` processes.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::server::RedisServer;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of one `redis-cli --cluster create`.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Clusters tried before [`RedisCluster::start`] gives up.
const CREATE_ATTEMPTS: usize = 3;

/// A 3-master / 3-replica Redis Cluster on free ports, created with
/// `redis-cli --cluster create --cluster-replicas 1`, every process killed
/// when dropped.
///
/// `cluster-node-timeout` is 1 s (see [`start_with_node_timeout`](Self::start_with_node_timeout)),
/// so a killed master's replica takes over within a few seconds.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Node id.
    pub id: String,
    /// Port.
    pub port: u16,
    /// Whether it is a master.
    pub master: bool,
    /// Its master's id, for a replica.
    pub master_id: Option<String>,
    /// Whether it is flagged failed (`fail` or `fail?`) or disconnected.
    pub down: bool,
    /// Slot ranges served, for a master.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six nodes, creates the cluster and waits until every slot is
    /// served and every master has a replica in sync.
    pub fn start() -> Self {
        Self::start_with_node_timeout(Duration::from_millis(1000))
    }

    /// Like [`start`](Self::start) with another `cluster-node-timeout`.
    ///
    /// `redis-cli --cluster create` can wait for the nodes to agree forever
    /// (seen on a loaded machine): each attempt is bounded by a minute,
    /// after which its nodes are killed and a fresh set is tried, three
    /// times in all.
    pub fn start_with_node_timeout(node_timeout: Duration) -> Self {
        let mut failures = Vec::new();
        for _ in 0..CREATE_ATTEMPTS {
            match Self::try_start(node_timeout) {
                Ok(cluster) => return cluster,
                Err(why) => failures.push(why),
            }
        }
        panic!("no Redis Cluster in {CREATE_ATTEMPTS} attempts: {failures:#?}");
    }

    fn try_start(node_timeout: Duration) -> Result<Self, String> {
        let timeout = node_timeout.as_millis().to_string();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::builder()
                    .config("cluster-enabled", "yes")
                    .config("cluster-config-file", "nodes.conf")
                    .config("cluster-node-timeout", &timeout)
                    .config("appendonly", "no")
                    .start()
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(RedisServer::addr).collect();
        let child = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli --cluster create");
        let pid = child.id().to_string();
        let (done, finished) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let output = match finished.recv_timeout(CREATE_TIMEOUT) {
            Ok(output) => output.expect("wait for redis-cli"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                let _ = waiter.join();
                // The nodes are killed when dropped.
                return Err(format!(
                    "redis-cli --cluster create did not finish within {CREATE_TIMEOUT:?}"
                ));
            }
        };
        let _ = waiter.join();
        if !output.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&output.stdout)
            ));
        }
        let cluster = Self { nodes };
        cluster.wait_ready();
        Ok(cluster)
    }

    /// `redis://127.0.0.1:<port>` of every node, running or not.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, in creation order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Node `i`, to kill or restart it.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// Index of the node listening on `port`.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// `CLUSTER NODES` as seen by the first running node.
    pub fn topology(&self) -> Vec<ClusterNode> {
        let Some(node) = self.nodes.iter().find(|n| n.answers()) else {
            return Vec::new();
        };
        parse_nodes(&node.cli(&["CLUSTER", "NODES"]))
    }

    /// Hash slot of `key`.
    pub fn keyslot(key: &str) -> u16 {
        crc16(hash_tag(key.as_bytes())) % 16384
    }

    /// Index of the master currently serving `key`, as seen by a running
    /// node.
    pub fn master_of(&self, key: &str) -> Option<usize> {
        let slot = Self::keyslot(key);
        let topology = self.topology();
        let owner = topology.iter().find(|n| {
            n.master && !n.down && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
        })?;
        self.index_of_port(owner.port)
    }

    /// Kills the master serving `key` and returns its index.
    pub fn kill_master_of(&mut self, key: &str) -> usize {
        let i = self.master_of(key).expect("a master serves the key");
        self.nodes[i].kill();
        i
    }

    /// Waits until a running node other than `old` serves `key` and the
    /// cluster state is `ok` on every running node; returns its index.
    pub fn wait_for_failover(&mut self, key: &str, old: usize) -> usize {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(i) = self.master_of(key)
                && i != old
                && self.nodes[i].is_running()
                && self.all_ok()
            {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no failover for {key} in time; topology: {:#?}; info: {}",
                self.topology(),
                self.nodes
                    .iter()
                    .find(|n| n.answers())
                    .map(|n| n.cli(&["CLUSTER", "INFO"]))
                    .unwrap_or_default()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees
    /// that every slot is served, and every running replica is in sync.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.all_ok() {
            assert!(Instant::now() < deadline, "cluster not ready in time");
            sleep(Duration::from_millis(100));
        }
    }

    fn all_ok(&self) -> bool {
        let running: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.answers()).collect();
        !running.is_empty()
            && running.iter().all(|n| {
                let info = n.cli(&["CLUSTER", "INFO"]);
                let topology = parse_nodes(&n.cli(&["CLUSTER", "NODES"]));
                let served: u32 = topology
                    .iter()
                    .filter(|t| t.master && !t.down)
                    .flat_map(|t| t.slots.iter())
                    .map(|&(a, b)| u32::from(b - a) + 1)
                    .sum();
                let in_sync = n.info("replication", "role").as_deref() != Some("slave")
                    || n.info("replication", "master_link_status").as_deref() == Some("up");
                info.contains("cluster_state:ok") && served == 16384 && in_sync
            })
    }
}

fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let port = fields[1]
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let flags = fields[2];
            let master = flags.split(',').any(|f| f == "master");
            let down =
                flags.split(',').any(|f| f == "fail" || f == "fail?") || fields[7] != "connected";
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => {
                        let n = s.parse().ok()?;
                        Some((n, n))
                    }
                })
                .collect();
            Some(ClusterNode {
                id: fields[0].to_owned(),
                port,
                master,
                master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                down,
                slots,
            })
        })
        .collect()
}

/// The part of a key that is hashed: the first non-empty `{…}`, or all.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// CRC16-CCITT (XMODEM), as Redis Cluster uses for key slots.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyslots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(RedisCluster::keyslot("123456789"), 0x31C3);
        assert_eq!(RedisCluster::keyslot("foo"), 12182);
        assert_eq!(
            RedisCluster::keyslot("{user1000}.following"),
            RedisCluster::keyslot("user1000")
        );
    }

    #[test]
    fn parses_cluster_nodes() {
        let text = "07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected\n\
                    e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 6000\n\
                    9fd8 127.0.0.1:30002@40002 master,fail - 0 0 2 disconnected";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].master_id.as_deref(), Some("e7d1"));
        assert_eq!(nodes[1].slots, vec![(0, 5460), (6000, 6000)]);
        assert!(nodes[2].down && nodes[2].master);
    }
}
