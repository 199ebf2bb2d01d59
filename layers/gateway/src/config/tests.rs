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
