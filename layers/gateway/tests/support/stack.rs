//! The composed stack: a Redis Cluster, instance processes running
//! [`super::instance`] over it, and the gateway binary in front of them,
//! routing by the session cookie the instances set; and a client that reads
//! which instance answered and whether its cache did.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use foresight::core::{ClientKey, InstanceSpec, Topology};
use foresight::forward::http_client;
use foresight::shard::DEFAULT_SEED;
use foresight_testkit::RedisCluster;
use foresight_testkit::process::InstanceProcess;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::Gateway;
use super::instance::{
    ATTEMPT_NUMBER_HEADER, CLUSTER_URLS_ENV, HITS_HEADER, INSTANCE_HEADER, MISSES_HEADER,
};

/// The session cookie: SessionMirrorLayer's default, which is also the
/// gateway's default routing key.
pub const SESSION_COOKIE: &str = "__Host-session";

/// An instance of the gateway's file: id, address, weight.
pub type Member = (String, SocketAddr, f64);

/// The gateway file of the composed stack: cookie routing on
/// [`SESSION_COOKIE`], the default shadow policy (reads coalesced per
/// session, writes copied only to shadow-aware instances) with every
/// instance in `shadow_aware`, since each runs SessionMirrorLayer.
pub fn composed_config(members: &[Member], shadow_aware: &[&str]) -> String {
    let aware: Vec<String> = shadow_aware.iter().map(|id| format!("{id:?}")).collect();
    let mut text = format!(
        "[listen]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n\
         [key]\nkind = \"cookie\"\nname = \"{SESSION_COOKIE}\"\n\n\
         [shadow]\nshadow_aware = [{}]\n",
        aware.join(", ")
    );
    for (id, addr, weight) in members {
        text.push_str(&format!(
            "\n[[instance]]\nid = \"{id}\"\naddr = \"{addr}\"\nweight = {weight:?}\n"
        ));
    }
    text
}

/// The primary of the session `cookie` (`name=value`) among `members`:
/// rank 0 of the weighted rendezvous hashing the gateway's ShardLayer runs
/// (default seed), computed here as the gateway computes it.
pub fn primary_of(members: &[Member], cookie: &str) -> String {
    let topology = Topology::from_instances(members.iter().map(|(id, addr, weight)| {
        InstanceSpec::new(id.as_str())
            .with_addr(*addr)
            .with_weight(*weight)
    }))
    .unwrap();
    let value = cookie.split_once('=').unwrap().1;
    topology.rank(&ClientKey::from(value), DEFAULT_SEED, 1)[0]
        .as_str()
        .to_owned()
}

/// A Redis Cluster, instance processes on it and the gateway in front.
/// Every process is killed when dropped.
pub struct Stack {
    pub instances: Vec<InstanceProcess>,
    pub gateway: Gateway,
    pub cluster: RedisCluster,
    /// The gateway file's instances.
    pub members: Vec<Member>,
    /// Where the entry test of the instance processes is.
    entry_test: &'static str,
    /// More environment of every instance process.
    env: Vec<(&'static str, String)>,
}

impl Stack {
    /// Starts the cluster, one instance process per name (this test
    /// binary's `entry_test`, which calls
    /// [`serve_if_instance`](super::instance::serve_if_instance)), and the
    /// gateway with every instance at weight 1, all shadow-aware.
    pub async fn start(entry_test: &'static str, names: &[&str]) -> Self {
        Self::start_with(entry_test, names, Vec::new()).await
    }

    /// Like [`start`](Self::start), with `env` added to the environment of
    /// every instance process (e.g. [`REPLICAS_ENV`](super::instance::REPLICAS_ENV)).
    pub async fn start_with(
        entry_test: &'static str,
        names: &[&str],
        env: Vec<(&'static str, String)>,
    ) -> Self {
        let cluster = tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .unwrap();
        let mut stack_instances = Vec::new();
        for name in names {
            stack_instances.push(spawn_instance(entry_test, name, &cluster, &env).await);
        }
        let members: Vec<Member> = stack_instances
            .iter()
            .map(|i: &InstanceProcess| (i.name.clone(), i.addr, 1.0))
            .collect();
        let gateway = Gateway::start(&composed_config(&members, names)).await;
        Self {
            instances: stack_instances,
            gateway,
            cluster,
            members,
            entry_test,
            env,
        }
    }

    /// Starts one more instance process on the cluster (not yet in the
    /// gateway's file).
    pub async fn spawn_instance(&self, name: &str) -> InstanceProcess {
        spawn_instance(self.entry_test, name, &self.cluster, &self.env).await
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> &InstanceProcess {
        self.instances.iter().find(|i| i.name == name).unwrap()
    }

    /// The value of the gateway's counter `name` (without labels) on its
    /// `/metrics`; 0 when it is not there yet.
    pub async fn gateway_counter(&self, name: &str) -> u64 {
        let metrics = super::get(self.gateway.admin, "/metrics", "").await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or(0, |value| value.trim().parse::<f64>().unwrap() as u64)
    }

    /// Waits until the gateway reports every instance Healthy, at most
    /// `limit`; panics past it with the report. A fault test starts from
    /// there: on a loaded machine the gateway may have ejected a slow
    /// instance a moment before, and a second fault on top of that is
    /// another test.
    pub async fn wait_all_healthy(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if all_healthy(self.gateway.admin).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not every instance Healthy within {limit:?}:\n{}",
                super::get(self.gateway.admin, "/instances", "").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Index of the instance named `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.instances.iter().position(|i| i.name == name).unwrap()
    }
}

async fn spawn_instance(
    entry_test: &'static str,
    name: &str,
    cluster: &RedisCluster,
    env: &[(&'static str, String)],
) -> InstanceProcess {
    let mut env: Vec<(&'static str, String)> = env.to_vec();
    env.push((CLUSTER_URLS_ENV, cluster.urls().join(",")));
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        InstanceProcess::spawn(entry_test, &name, &env)
    })
    .await
    .unwrap()
}

/// Whether the gateway whose admin listener is `admin` reports every
/// instance Healthy.
pub async fn all_healthy(admin: SocketAddr) -> bool {
    let report = super::get(admin, "/instances", "").await;
    let states: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("\t127.0.0.1:"))
        .filter_map(|l| l.split('\t').nth(4))
        .collect();
    !states.is_empty() && states.iter().all(|s| *s == "Healthy")
}

/// One answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The instance that ran the handler.
    pub instance: String,
    /// Session loads of the request answered from the instance's cache.
    pub hits: u64,
    /// Session loads that read through to Redis.
    pub misses: u64,
    /// The routing tier's attempt number: 0 for a first attempt, more for
    /// a replay on another instance.
    pub attempt: u64,
    /// The session cookie the instance set, if it set one.
    pub set_cookie: Option<String>,
    pub body: String,
}

/// A keep-alive HTTP client of the gateway.
#[derive(Clone, Debug)]
pub struct WebClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    gateway: SocketAddr,
    timeout: Duration,
}

impl WebClient {
    /// A client of the gateway at `gateway`; a request that takes longer
    /// than `timeout` is an error.
    pub fn new(gateway: SocketAddr, timeout: Duration) -> Self {
        Self {
            http: http_client(),
            gateway,
            timeout,
        }
    }

    /// Sends `method path` with the session cookie `cookie` (`name=value`),
    /// if any. An error is anything the client would see as one: no answer,
    /// a transport failure, a timeout.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Reply, String> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.gateway));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let request = request.body(Empty::new()).unwrap();
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("{e:?}"))?
                .to_bytes();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let count = |name: &str| header(name).and_then(|v| v.parse().ok()).unwrap_or(0);
            Ok(Reply {
                status: parts.status,
                instance: header(INSTANCE_HEADER).unwrap_or_default(),
                hits: count(HITS_HEADER),
                misses: count(MISSES_HEADER),
                attempt: count(ATTEMPT_NUMBER_HEADER),
                set_cookie: header("set-cookie")
                    .and_then(|c| c.split(';').next().map(str::to_owned)),
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    /// `PUT /n/{n}`: sets the session's `n`.
    pub async fn put_n(&self, cookie: Option<&str>, n: u64) -> Result<Reply, String> {
        self.send(Method::PUT, &format!("/n/{n}"), cookie).await
    }

    /// `GET /n`: the session's `n`.
    pub async fn get_n(&self, cookie: &str) -> Result<Reply, String> {
        self.send(Method::GET, "/n", Some(cookie)).await
    }
}

impl UserSession {
    /// Whether `body`, a read of `n`, is a value the session may hold: the
    /// last acknowledged write, or the one after it if its outcome is
    /// unknown.
    pub fn holds(&self, body: &str) -> bool {
        body == self.acknowledged.to_string()
            || (self.unconfirmed && body == (self.acknowledged + 1).to_string())
    }
}

/// A client session of the composed stack.
#[derive(Debug, Clone)]
pub struct UserSession {
    /// `__Host-session=<id>`.
    pub cookie: String,
    /// The instance its requests reach while every instance is healthy:
    /// rank 0 of the gateway's hashing (see [`primary_of`]).
    pub primary: String,
    /// The last `n` the stack acknowledged.
    pub acknowledged: u64,
    /// Whether the `PUT` of `acknowledged + 1` failed, so its outcome is
    /// unknown: the session may hold either value.
    pub unconfirmed: bool,
}

/// Creates `count` sessions of the stack whose instances are `members`,
/// each with `n = 1` and read back once. Panics on any failure: the stack
/// is healthy.
pub async fn create_sessions(
    client: &WebClient,
    members: &[Member],
    count: usize,
) -> Vec<UserSession> {
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        let created = client.put_n(None, 1).await.unwrap();
        assert_eq!(created.status, StatusCode::OK, "{created:?}");
        let cookie = created.set_cookie.clone().expect("a new session's cookie");
        let read = client.get_n(&cookie).await.unwrap();
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "1"),
            "{read:?}"
        );
        sessions.push(UserSession {
            primary: primary_of(members, &cookie),
            cookie,
            acknowledged: 1,
            unconfirmed: false,
        });
    }
    sessions
}
