//! Free TCP ports.

use std::net::{Ipv4Addr, TcpListener};

/// A port free on 127.0.0.1 whose cluster bus port (`port + 10000`) is free
/// too, and which is never 6379.
///
/// The port is free when checked; a server that then fails to bind it is
/// restarted on another one by [`RedisServer`](crate::RedisServer).
pub fn free_port() -> u16 {
    loop {
        let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let port = addr.port();
        if port == 6379 || port > 55_000 {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}
