//! The `foresight-gateway` binary; see the library docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use foresight_gateway::config::{Config, LoadError};
use metrics_exporter_prometheus::PrometheusBuilder;

/// A request allocates a few dozen small blocks: glibc's malloc and free
/// took about a tenth of the instructions per request, and mimalloc cut
/// the total by 7 % (callgrind; see `benches/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sticky, predictive routing in front of HTTP app servers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit (0 when valid, 2 when not).
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error @ LoadError::Invalid(_)) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "{}: ok, {} instances",
            args.config.display(),
            config.instances.len()
        );
        return ExitCode::SUCCESS;
    }
    // Built from the configuration, so that `[server] workers` sizes it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.worker_threads().get())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args.config, config))
}

/// Installs the metrics recorder and runs the gateway until SIGTERM or
/// SIGINT.
async fn serve(path: PathBuf, config: Config) -> ExitCode {
    // The recorder goes in before the layers are built: they register their
    // counters when built.
    let prometheus = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("metrics recorder: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = foresight_gateway::run(
        path,
        config,
        prometheus,
        foresight_gateway::server::termination(),
        |bound| eprintln!("LISTENING public={} admin={}", bound.public, bound.admin),
    )
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
