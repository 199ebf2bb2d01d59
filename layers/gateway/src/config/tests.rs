use super::*;

const VALID: &str = r#"
[listen]
public = "127.0.0.1:8080"
admin = "127.0.0.1:9090"

[key]
kind = "header"
name = "x-account-id"
missing = "reject"

[limits]
header_read_timeout = "5s"
request_timeout = "1m"
max_body_bytes = 4096

[proxy]
trusted_proxies = ["10.0.0.0/8"]

[[instance]]
id = "alpha"
addr = "127.0.0.1:9001"

[[instance]]
id = "beta"
addr = "127.0.0.1:9002"
weight = 2.5
"#;

fn error(text: &str) -> String {
    Config::parse("g.toml", text).unwrap_err().to_string()
}

#[test]
fn a_valid_file_parses_with_its_settings_and_defaults() {
    let config = Config::parse("g.toml", VALID).unwrap();
    assert_eq!(config.key.kind, KeyKind::Header);
    assert_eq!(config.key.missing, MissingKey::Reject);
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(5));
    assert_eq!(config.limits.request_timeout, Duration::from_secs(60));
    assert_eq!(config.limits.max_body_bytes, 4096);
    assert_eq!(config.limits.max_connections, 10_000);
    assert_eq!(
        config.proxy.trusted_proxies,
        ["10.0.0.0/8".parse::<IpNet>().unwrap()]
    );
    let specs = config.instance_specs();
    assert_eq!(specs[1].weight, 2.5);
    assert_eq!(specs[0].weight, 1.0);
    assert!(config.shadow.enabled && config.forecast.enabled);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let text = "[listen]\npublic = \"127.0.0.1:8080\"\nadmin = \n";
    assert!(error(text).starts_with("g.toml:3:"), "{}", error(text));
}

#[test]
fn type_errors_and_unknown_keys_name_their_place() {
    let text = VALID.replace("max_body_bytes = 4096", "max_body_bytes = \"big\"");
    let e = error(&text);
    assert_eq!(
        e,
        "g.toml:14:18: invalid type: string \"big\", expected usize"
    );
    let text = VALID.replace("[proxy]", "[proxy]\nmystery = 1");
    let e = error(&text);
    assert!(
        e.starts_with("g.toml:17:1: ") && e.contains("mystery"),
        "{e}"
    );
    let text = VALID.replace("\"10.0.0.0/8\"", "\"10.0.0.0/99\"");
    assert!(error(&text).starts_with("g.toml:17:"), "{}", error(&text));
    let text = VALID.replace("\"5s\"", "\"soon\"");
    assert!(
        error(&text).starts_with("g.toml:12:23: "),
        "{}",
        error(&text)
    );
}

#[test]
fn semantic_errors_point_at_the_offending_value() {
    let text = VALID.replace("id = \"beta\"", "id = \"alpha\"");
    assert_eq!(
        error(&text),
        "g.toml:24:6: instance \"alpha\" is listed twice"
    );
    let text = VALID.replace("weight = 2.5", "weight = -1.0");
    assert_eq!(error(&text), "g.toml:26:10: weight must be above 0, not -1");
    let text = VALID.replace("admin = \"127.0.0.1:9090\"", "admin = \"127.0.0.1:8080\"");
    assert_eq!(
        error(&text),
        "g.toml:4:9: the admin listener must not share the public address"
    );
    let text = VALID.replace("name = \"x-account-id\"", "name = \"bad header\"");
    assert_eq!(
        error(&text),
        "g.toml:8:8: \"bad header\" is not a header name"
    );
    let text = VALID.replace("[proxy]", "[routing]\nbalance_factor = 0.5\n\n[proxy]");
    assert_eq!(
        error(&text),
        "g.toml:17:18: balance_factor must be at least 1, not 0.5"
    );
    let text = VALID.replace("[proxy]", "[routing]\nbalance_factor = 1.25\n\n[proxy]");
    assert_eq!(
        Config::parse("g.toml", &text)
            .unwrap()
            .routing
            .balance_factor
            .map(|f| *f.get_ref()),
        Some(1.25)
    );
    let no_instances =
        "instance = []\n[listen]\npublic = \"127.0.0.1:8080\"\nadmin = \"127.0.0.1:9090\"\n";
    assert_eq!(
        error(no_instances),
        "g.toml:1:1: at least one [[instance]] is required"
    );
}

#[test]
fn missing_sections_are_reported() {
    let e = error("[[instance]]\nid = \"a\"\naddr = \"127.0.0.1:1\"\n");
    assert!(e.contains("listen"), "{e}");
}

const SHADOW: &str = r#"
[shadow]
shadow_aware = ["beta"]
coalesce_interval = "10s"
coalesce_capacity = 1000

[[shadow.rule]]
methods = ["GET", "HEAD"]
path_prefix = "/assets"
action = "skip"

[[shadow.rule]]
path_prefix = "/cart"
sample = 0.5
coalesce = "0s"
"#;

/// `VALID` with the `[shadow]` section above, whose `[shadow]` line is the
/// file's line 27.
fn with_shadow(shadow: &str) -> String {
    format!("{}{shadow}", VALID.trim_end_matches('\n'))
}

#[test]
fn the_shadow_section_becomes_the_layers_policy() {
    let config = Config::parse("g.toml", &with_shadow(SHADOW)).unwrap();
    assert_eq!(config.shadow.coalesce_interval, Duration::from_secs(10));
    assert_eq!(config.shadow.rules.len(), 2);
    assert_eq!(config.shadow.rules[0].get_ref().action, RuleAction::Skip);
    let expected = foresight::shadow::ShadowPolicy::new()
        .with_shadow_aware(["beta"])
        .with_coalesce_interval(Duration::from_secs(10))
        .with_coalesce_capacity(1000)
        .unwrap()
        .with_rule(
            foresight::shadow::ShadowRule::skip()
                .with_methods([http::Method::GET, http::Method::HEAD])
                .with_path_prefix("/assets")
                .unwrap(),
        )
        .with_rule(
            foresight::shadow::ShadowRule::shadow()
                .with_path_prefix("/cart")
                .unwrap()
                .with_sample(0.5)
                .unwrap()
                .with_coalesce(Duration::ZERO),
        );
    assert_eq!(config.shadow_policy().unwrap(), expected);
    // By default no instance is shadow-aware.
    let config = Config::parse("g.toml", VALID).unwrap();
    assert_eq!(
        config.shadow_policy().unwrap(),
        foresight::shadow::ShadowPolicy::new()
    );
}

#[test]
fn bad_shadow_values_point_at_the_offending_value() {
    let cases = [
        (
            SHADOW.replace("[\"beta\"]", "[\"beta\", \"gamma\"]"),
            "g.toml:28:25: shadow_aware names \"gamma\", which is no [[instance]]",
        ),
        (
            SHADOW.replace("capacity = 1000", "capacity = 0"),
            "g.toml:30:21: coalescing capacity must be at least 1",
        ),
        (
            SHADOW.replace("\"HEAD\"", "\"head\""),
            "g.toml:33:19: \"head\" is not a method like \"GET\" (in capitals)",
        ),
        (
            SHADOW.replace("\"/assets\"", "\"assets\""),
            "g.toml:34:15: path prefix must start with '/', not \"assets\"",
        ),
        (
            SHADOW.replace("sample = 0.5", "sample = 1.5"),
            "g.toml:39:10: sample ratio must be within 0 and 1, not 1.5",
        ),
        (
            SHADOW.replace("[shadow]", "[shadow]\nsampling = -0.5"),
            "g.toml:28:12: sampling must be within 0 and 1, not -0.5",
        ),
    ];
    for (shadow, expected) in cases {
        assert_eq!(error(&with_shadow(&shadow)), expected);
    }
    // Type errors and unknown keys come from the parser, placed as well.
    let e = error(&with_shadow(&SHADOW.replace("\"skip\"", "\"maybe\"")));
    assert!(
        e.starts_with("g.toml:35:10: unknown variant `maybe`"),
        "{e}"
    );
    let e = error(&with_shadow(&SHADOW.replace("\"10s\"", "\"soon\"")));
    assert!(e.starts_with("g.toml:29:21: "), "{e}");
}

/// `[upstream_tls]` with `keys` (one a line, from line 2) before [`VALID`].
fn with_tls(keys: &str) -> String {
    format!("[upstream_tls]\n{keys}\n{VALID}")
}

/// A PEM CA certificate made for the test.
fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn upstream_tls_is_off_by_default_and_its_files_unread_while_off() {
    let config = Config::parse("g.toml", VALID).unwrap();
    assert!(!*config.upstream_tls.enabled.get_ref());
    let off = with_tls("enabled = false\nca_file = \"/nonexistent/ca.pem\"");
    assert!(Config::parse("g.toml", &off).is_ok());
}

#[test]
fn upstream_tls_reads_its_ca_file_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem()).unwrap();
    let file = dir.path().join("g.toml").display().to_string();
    let text = with_tls("enabled = true\nca_file = \"ca.pem\"\nserver_name = \"app.internal\"");
    let config = Config::parse(&file, &text).unwrap();
    let tls = &config.upstream_tls;
    assert_eq!(
        tls.ca_file.as_ref().unwrap().get_ref(),
        &dir.path().join("ca.pem")
    );
    assert_eq!(
        tls.server_name.as_ref().map(|n| n.get_ref().as_str()),
        Some("app.internal")
    );
}

#[test]
fn upstream_tls_errors_name_the_key_and_its_place() {
    let e = error(&with_tls("enabled = true\ncafile = \"ca.pem\""));
    assert!(e.starts_with("g.toml:3:1: ") && e.contains("cafile"), "{e}");

    let e = error(&with_tls(
        "enabled = true\nca_file = \"/nonexistent/ca.pem\"",
    ));
    assert!(
        e.starts_with("g.toml:3:11: [upstream_tls] ca_file: cannot read /nonexistent/ca.pem: "),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let e = error(&with_tls(&format!(
        "enabled = true\nca_file = \"{}\"",
        empty.display()
    )));
    assert_eq!(
        e,
        format!(
            "g.toml:3:11: [upstream_tls] ca_file: {} holds no PEM certificate",
            empty.display()
        )
    );

    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem()).unwrap();
    let keys = format!("enabled = true\nca_file = \"{}\"", ca.display());
    let e = error(&with_tls(&format!("{keys}\nserver_name = \"not a name\"")));
    assert_eq!(
        e,
        "g.toml:4:15: [upstream_tls] server_name: \"not a name\" is not a DNS name or IP address"
    );
    let e = error(&with_tls(&format!(
        "{keys}\nclient_cert = \"{}\"",
        ca.display()
    )));
    assert_eq!(
        e,
        "g.toml:4:15: [upstream_tls] client_cert: needs client_key beside it"
    );
    let e = error(&with_tls(&format!(
        "{keys}\nclient_cert = \"{0}\"\nclient_key = \"{0}\"",
        ca.display()
    )));
    assert!(
        e.starts_with("g.toml:5:14: [upstream_tls] client_key: ") && e.contains("no private key"),
        "{e}"
    );
}

#[test]
fn server_workers_default_to_the_cpus_and_can_be_set() {
    let config = Config::parse("g.toml", VALID).unwrap();
    let cpus = std::thread::available_parallelism().unwrap();
    assert_eq!(config.server.worker_threads(), cpus);
    let one = format!("[server]\nworkers = 1\n{VALID}");
    let config = Config::parse("g.toml", &one).unwrap();
    assert_eq!(config.server.worker_threads().get(), 1);
}

#[test]
fn zero_server_workers_are_refused_at_their_line() {
    let zero = format!("[server]\nworkers = 0\n{VALID}");
    assert_eq!(
        error(&zero),
        "g.toml:2:11: [server] workers must be at least 1"
    );
}

#[test]
fn upstream_connection_limits_have_defaults_and_refuse_zero() {
    let config = Config::parse("g.toml", VALID).unwrap();
    assert_eq!(config.limits.upstream_max_connections, 1024);
    assert_eq!(config.limits.upstream_idle_timeout, Duration::from_secs(90));
    let set = VALID.replace(
        "max_body_bytes = 4096",
        "max_body_bytes = 4096\nupstream_max_connections = 8\nupstream_idle_timeout = \"5s\"",
    );
    let config = Config::parse("g.toml", &set).unwrap();
    assert_eq!(config.limits.upstream_max_connections, 8);
    assert_eq!(config.limits.upstream_idle_timeout, Duration::from_secs(5));
    let zero = VALID.replace(
        "max_body_bytes = 4096",
        "max_body_bytes = 4096\nupstream_max_connections = 0",
    );
    assert!(
        error(&zero).ends_with("[limits] upstream_max_connections must be at least 1"),
        "{}",
        error(&zero)
    );
}
