//! `streamcheck ref-daemon`: the reference streaming daemon, optionally with a fault mode.

use std::process::ExitCode;

use super::values::seconds;

#[derive(clap::Args)]
#[command(
    after_help = "The upstream comes from the environment: OPENAI_API_BASE (required, \
    e.g. http://127.0.0.1:28080/v1), OPENAI_API_KEY, OPENAI_INSECURE_SSL=true (accept a \
    self-signed certificate), OPENAI_HTTP2_ENABLED (true: h2c on http:// bases; false: HTTP/1.1 \
    only), OPENAI_MODEL (when the handoff names no model).\n\
    SIGTERM or SIGINT: stop accepting, remove the socket, let streams finish (--drain-timeout)."
)]
pub struct RefDaemonArgs {
    /// Unix socket to listen on (a stale socket file there is replaced).
    #[arg(long, value_name = "PATH")]
    socket: Option<std::path::PathBuf>,
    /// Permissions of the socket file, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "0666", value_parser = parse_socket_mode)]
    socket_mode: u32,
    /// Run with one realistic bug; `--fault list` prints them.
    #[arg(long, value_name = "NAME")]
    fault: Option<FaultArg>,
    /// The shape of the events sent to clients (composes with --fault).
    #[arg(long, value_name = "FORMAT", default_value = "extended")]
    client_format: streamcheck::refdaemon::ClientFormat,
    /// Seconds to wait for the upstream's response head, and between two upstream reads.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    upstream_timeout: f64,
    /// Seconds a client may read nothing before its stream is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    client_timeout: f64,
    /// Seconds a shutdown waits for running streams before ending them.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    drain_timeout: f64,
}

/// `--fault`: a fault mode, or `list`.
#[derive(Clone, Copy)]
enum FaultArg {
    List,
    Mode(streamcheck::refdaemon::Fault),
}

impl clap::ValueEnum for FaultArg {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: std::sync::LazyLock<Vec<FaultArg>> = std::sync::LazyLock::new(|| {
            let modes = streamcheck::refdaemon::Fault::all()
                .iter()
                .map(|f| FaultArg::Mode(*f));
            std::iter::once(FaultArg::List).chain(modes).collect()
        });
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            FaultArg::List => Some(
                clap::builder::PossibleValue::new("list").help("Print the fault modes and exit"),
            ),
            FaultArg::Mode(fault) => clap::ValueEnum::to_possible_value(fault),
        }
    }
}

fn parse_socket_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode such as 0666 or 0660"
        )),
    }
}

pub fn run(args: RefDaemonArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::refdaemon::{self, Config, Fault, UpstreamConfig};
    let fault = match args.fault {
        Some(FaultArg::List) => {
            for fault in Fault::all() {
                println!("{:<32} {}", fault.name(), fault.description());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(FaultArg::Mode(fault)) => Some(fault),
        None => None,
    };
    let Some(socket) = args.socket else {
        // Not `required`, so that `--fault list` works alone; this is the error clap would give.
        let mut cmd = <crate::Cli as clap::CommandFactory>::command();
        cmd.build();
        if let Some(sub) = cmd.find_subcommand_mut("ref-daemon") {
            sub.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--socket PATH is required",
            )
            .exit();
        }
        anyhow::bail!("--socket PATH is required");
    };
    let mut config = Config::new(socket);
    config.socket_mode = args.socket_mode;
    config.fault = fault;
    config.client_format = args.client_format;
    config.timeouts.upstream = seconds("upstream-timeout", args.upstream_timeout)?;
    config.timeouts.client = seconds("client-timeout", args.client_timeout)?;
    config.drain = seconds("drain-timeout", args.drain_timeout)?;
    refdaemon::run(config, UpstreamConfig::from_env()?)?;
    Ok(ExitCode::SUCCESS)
}
