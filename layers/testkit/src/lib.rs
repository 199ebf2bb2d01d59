//! Test support for Foresight.
//!
//! - [`RedisServer`]: a `redis-server` process on a free port, in its own
//!   temporary directory, killed when dropped (also when the test panics).
//! - [`RedisCluster`]: a 3-master / 3-replica Redis Cluster made with
//!   `redis-cli --cluster create`, ready when returned, with helpers to find
//!   a key's master, kill it and wait for its replica to take over.
//! - [`EtcdCluster`]: a 3-member etcd cluster of local processes, with
//!   helpers to find the leader, SIGKILL / SIGSTOP / SIGCONT and restart a
//!   member; skipped with a message when etcd is missing, unless `CI` is set.
//! - [`linearizability`]: a Wing–Gong checker for recorded histories.
//! - [`http`]: axum instances that can be killed like a process, and a hyper
//!   server for gateway stacks, on loopback ports.
//! - [`process`]: instances as separate OS processes (the test binary run
//!   again), with SIGSTOP / SIGCONT / SIGKILL, that exit with their test.
//! - [`keys`]: client keys half of which route to a chosen victim.
//! - [`reliability`]: the rows of the fault matrix in `RELIABILITY.md`.
//!
//! Tests never touch a Redis they did not start: ports are picked free,
//! never 6379. `redis-server` and `redis-cli` must be on `PATH`.
//!
//! ```no_run
//! use foresight_testkit::{RedisCluster, RedisServer};
//!
//! let mut server = RedisServer::start();
//! assert_eq!(server.cli(&["PING"]), "PONG");
//! let url = server.url(); // redis://127.0.0.1:<port>
//! server.kill();
//! server.restart();
//!
//! let cluster = RedisCluster::start();
//! let urls = cluster.urls();
//! # drop((url, urls));
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod cluster;
mod etcd;
pub mod http;
pub mod keys;
pub mod linearizability;
mod port;
pub mod process;
pub mod reliability;
mod server;

pub use cluster::{ClusterNode, RedisCluster};
pub use etcd::{ETCD_BIN_ENV, EtcdCluster};
pub use port::free_port;
pub use server::{RedisServer, RedisServerBuilder};
