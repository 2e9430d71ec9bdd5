//! The command line: `run`, `status`, `check`, `info`, `validate`, `stop`, `rejoin-now`,
//! `doctor`, and the operator requests to a running daemon (`fence`, `pause`, `resume`).
//! Parsing is clap's; each command lives in a module of its own and returns a [`Failure`] or
//! success, and [`main`] turns that into the exit code and prints the error once.

/// `print!` to standard output through [`out`]: never panics on a closed or full stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!($($arg)*)) };
}

/// `println!` to standard output through [`out`]: never panics on a closed or full stdout.
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

mod check;
mod doctor;
mod info;
mod operator;
pub(crate) mod out;
mod rejoin_now;
mod run;
mod status;
mod stop;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::daemon;
use crate::system::Root;
use crate::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "wdfeed",
    version,
    about = "Pets the hardware watchdog only while the node is healthy; fences it when it is not",
    propagate_version = true
)]
pub struct Cli {
    /// Read every /proc, /sys and /dev path under DIR (a fixture tree, or the host's root
    /// mounted in a container, e.g. /host).
    #[arg(
        long,
        global = true,
        env = "WDFEED_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    root: PathBuf,

    /// Accept a config that users other than its owner and root can write, or replace in
    /// its directory (a warning instead of a refusal). For test rigs only: those users can
    /// make wdfeed fence this node.
    #[arg(long, global = true, env = "WDFEED_ALLOW_UNSAFE_CONFIG", value_parser = clap::builder::FalseyValueParser::new())]
    allow_unsafe_config: bool,

    /// error, warn, info, debug or trace.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: pet every device while every check passes; fence when one fails.
    Run {
        /// The config file (default: /etc/wdfeed/watchdog.yaml, else the embedded default).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Run every check and log each decision ("would pet", "would fence") without
        /// opening a device or killing anything.
        #[arg(long)]
        dry_run: bool,
        /// Where to keep the state `wdfeed status` reads.
        #[arg(long, value_name = "FILE", default_value = crate::status::DEFAULT_STATUS_FILE)]
        status_file: PathBuf,
        /// wdfeed's runtime directory: must be on a tmpfs (or ramfs); it holds the fence
        /// record of this boot. Not under --root: it is this host's state.
        #[arg(long, value_name = "DIR", env = "WDFEED_RUNTIME_DIR", default_value = crate::fence::record::DEFAULT_RUNTIME_DIR)]
        runtime_dir: PathBuf,
        /// wdfeed's persistent state directory: it holds the state record that tells the next
        /// boot whether this one ended armed (the rejoin delay). Not under --root.
        #[arg(long, value_name = "DIR", env = "WDFEED_STATE_DIR", default_value = crate::rejoin::state::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Fence this node now, through the running daemon's prepared fence (check=operator):
    /// `fence.isolate`'s links down, the kill list killed, the hardware resets the node (or
    /// `mode: reboot` reboots it). Root only.
    Fence {
        /// Why (kept in the fence record, the kernel log and the metrics): one line of at
        /// most 200 bytes.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Cut a reason over 200 bytes to its first 200 (on a character boundary) instead of
        /// refusing it: for a template whose reason holds a name of unknown length (a unit
        /// name may have 255 bytes), where a refused request would be a missed fence.
        #[arg(long)]
        cut_reason: bool,
        /// The daemon's runtime directory (as given to `run`).
        #[arg(long, value_name = "DIR", env = "WDFEED_RUNTIME_DIR", default_value = crate::fence::record::DEFAULT_RUNTIME_DIR)]
        runtime_dir: PathBuf,
    },
    /// Pause fencing for failing checks (maintenance) for DURATION, at most the config's
    /// max-pause: checks keep running, the devices stay armed and petted, the freeze guard
    /// still fences. The pause ends by itself; a check still failing then fences. Root only.
    Pause {
        /// How long, e.g. 10m (at most max-pause, 1h by default).
        #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
        length: String,
        /// Why (shown by `status`, the metrics and the log): one line of at most 200 bytes.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// The daemon's runtime directory (as given to `run`).
        #[arg(long, value_name = "DIR", env = "WDFEED_RUNTIME_DIR", default_value = crate::fence::record::DEFAULT_RUNTIME_DIR)]
        runtime_dir: PathBuf,
    },
    /// End a maintenance pause now: a check without a valid lease fences at the next tick.
    /// Root only.
    Resume {
        /// The daemon's runtime directory (as given to `run`).
        #[arg(long, value_name = "DIR", env = "WDFEED_RUNTIME_DIR", default_value = crate::fence::record::DEFAULT_RUNTIME_DIR)]
        runtime_dir: PathBuf,
    },
    /// End the rejoin delay, or a hold (fence budget spent, `wdfeed.hold` on the kernel
    /// command line), now: READY=1 goes at once and the cluster stack ordered after wdfeed
    /// starts. Only when the peer is known to have stopped waiting for this node.
    RejoinNow {
        #[arg(long, value_name = "FILE", default_value = crate::status::DEFAULT_STATUS_FILE)]
        status_file: PathBuf,
    },
    /// End a fenced wdfeed (it ignores SIGTERM): the devices stay armed, the node still
    /// resets, and no wdfeed arms again in this boot.
    Stop {
        /// Required: says that the daemon to stop is fenced.
        #[arg(long)]
        fenced: bool,
        #[arg(long, value_name = "FILE", default_value = crate::status::DEFAULT_STATUS_FILE)]
        status_file: PathBuf,
    },
    /// Show the running daemon's state: checks, leases, last pet, fence state, bound.
    Status {
        #[arg(long, value_name = "FILE", default_value = crate::status::DEFAULT_STATUS_FILE)]
        status_file: PathBuf,
        /// What to print: a table, the JSON the daemon wrote, or Prometheus metrics.
        #[arg(long, value_enum, default_value_t = status::Format::Text)]
        format: status::Format,
        /// Same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Run every check once and print a table; exit 0 if healthy, 1 if not.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Describe the watchdog devices from sysfs without opening them (opening arms them),
    /// and the fence bound of the config.
    Info {
        /// Only these devices (e.g. /dev/watchdog0).
        devices: Vec<PathBuf>,
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Find sbd, Pacemaker, corosync, systemd's runtime watchdog, keepalived and any other
    /// watchdog user on this node, and say what conflicts with the config and how to fix it.
    Doctor {
        /// The config file (default: as `run`).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a config: print every problem, or "config looks good" and its fence bound.
    Validate {
        /// The config file (default: /etc/wdfeed/watchdog.yaml, else the embedded default).
        file: Option<PathBuf>,
        /// Print the embedded default config and exit.
        #[arg(long)]
        print_default: bool,
    },
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Run { .. }) {
        if let Err(e) = daemon::prepare_process() {
            eprintln!("wdfeed: {e}");
            return ExitCode::from(1);
        }
    }
    let _log = match crate::logging::init(&cli.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("wdfeed: {e}");
            return ExitCode::from(Failure::CONFIG);
        }
    };
    let root = Root::at(&cli.root);
    crate::config::permissions::allow_unsafe(cli.allow_unsafe_config);
    let result = match cli.command {
        Command::Run {
            config,
            dry_run,
            status_file,
            runtime_dir,
            state_dir,
        } => run::run(root, config, dry_run, status_file, runtime_dir, state_dir),
        Command::Fence {
            reason,
            cut_reason,
            runtime_dir,
        } => operator::fence(&runtime_dir, &reason, cut_reason),
        Command::Pause {
            length,
            reason,
            runtime_dir,
        } => operator::pause(&runtime_dir, &length, &reason),
        Command::Resume { runtime_dir } => operator::resume(&runtime_dir),
        Command::RejoinNow { status_file } => rejoin_now::run(&status_file),
        Command::Stop {
            fenced,
            status_file,
        } => stop::run(&status_file, fenced),
        Command::Status {
            status_file,
            format,
            json,
        } => status::run(
            &status_file,
            if json { status::Format::Json } else { format },
        ),
        Command::Check { config, json } => check::run(&root, config.as_deref(), json),
        Command::Info {
            devices,
            config,
            json,
        } => info::run(&root, &devices, config.as_deref(), json),
        Command::Validate {
            file,
            print_default,
        } => validate::run(&root, file.as_deref(), print_default),
        // An executable of its own, which replaces this process.
        Command::Doctor { config } => doctor::run(
            &cli.root,
            cli.allow_unsafe_config,
            &cli.log_level,
            config.as_deref(),
        ),
    };
    exit(result)
}

/// Prints a failure's message once and returns the exit code of `result`.
pub(crate) fn exit(result: Result<(), Failure>) -> ExitCode {
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("wdfeed: {}", f.message.replace('\n', "\nwdfeed: "));
            }
            ExitCode::from(f.code)
        }
    };
    out::finish(code)
}

/// The pid a status file names, if it can be a daemon's (not 0, not init).
fn daemon_pid(status_file: &std::path::Path, pid: u32) -> Result<i32, Failure> {
    i32::try_from(pid).ok().filter(|p| *p > 1).ok_or_else(|| {
        Failure::runtime(format!(
            "{}: pid {pid} is not a daemon's",
            status_file.display()
        ))
    })
}
