//! What the gateway's end-to-end tests share: the binary, a backend that
//! echoes, a config writer, and a gateway process that reports where it
//! listens.
#![allow(dead_code)] // Each test file uses its own part.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_foresight-gateway");

/// A backend that answers with its name, the path, and the request headers
/// it received, one per line; `/slow` takes a second.
pub async fn backend(name: &'static str) -> SocketAddr {
    async fn echo(name: &'static str, uri: axum::http::Uri, headers: HeaderMap) -> String {
        if uri.path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut lines: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        format!("name={name}\npath={}\n{}\n", uri.path(), lines.join("\n"))
    }
    let app = Router::new().fallback(move |uri, headers| echo(name, uri, headers));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn config(instances: &[(&str, SocketAddr, f64)], extra: &str) -> String {
    let mut text = String::from(
        "[listen]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n[key]\nkind = \"cookie\"\nname = \"sid\"\n\n",
    );
    text.push_str(extra);
    for (id, addr, weight) in instances {
        text.push_str(&format!(
            "\n[[instance]]\nid = \"{id}\"\naddr = \"{addr}\"\nweight = {weight}\n"
        ));
    }
    text
}

pub struct Gateway {
    pub child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("LISTENING ") {
                    return rest.to_owned();
                }
                eprintln!("gateway: {line}");
            }
            panic!("the gateway exited before listening");
        })
        .await
        .expect("the gateway listens within a minute");
        // Keep draining stderr so the child never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = |key: &str| -> SocketAddr {
            listening
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .unwrap()
                .parse()
                .unwrap()
        };
        Gateway {
            public: addr("public="),
            admin: addr("admin="),
            child,
            path,
            _dir: dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
