//! The gateway's configuration file: any text parses to a `Config` or a
//! positioned `ConfigError`, never a panic.
#![no_main]

use foresight_gateway::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse("gateway.toml", text) {
        Ok(config) => {
            let _ = config.instance_specs();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
