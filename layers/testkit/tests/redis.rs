//! The test support itself: servers start, stop, restart; a cluster forms
//! and fails over.

use foresight_testkit::{RedisCluster, RedisServer};

#[test]
fn server_starts_kills_and_restarts_on_its_port() {
    let mut server = RedisServer::start();
    assert_ne!(server.port(), 6379);
    assert_eq!(server.cli(&["PING"]), "PONG");
    let port = server.port();
    server.kill();
    assert!(!server.answers());
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
fn persistent_server_keeps_data_across_restart() {
    let mut server = RedisServer::builder().persistent().start();
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
    server.restart();
    assert_eq!(server.cli(&["GET", "k"]), "v");
}

#[test]
fn dropping_a_server_stops_it() {
    let server = RedisServer::start();
    let port = server.port();
    drop(server);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn cluster_forms_and_fails_over() {
    let mut cluster = RedisCluster::start();
    let topology = cluster.topology();
    assert_eq!(topology.iter().filter(|n| n.master).count(), 3);
    assert_eq!(topology.iter().filter(|n| !n.master).count(), 3);
    let old = cluster.kill_master_of("some-key");
    let new = cluster.wait_for_failover("some-key", old);
    assert_ne!(old, new);
    assert_eq!(cluster.node(new).cli(&["SET", "some-key", "1"]), "OK");
}
