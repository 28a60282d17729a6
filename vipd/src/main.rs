//! `vipd`: with ucarp's flags and no subcommand, a drop-in for one ucarp process; with
//! `run --config`, any number of groups; `status`, `demote`, `promote` talk to a running
//! daemon; `check-config` validates a file. Bad flags or values exit with code 2.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use vipd::config::{Config, ConfigError, RawGroup};
use vipd::control::{self, Reply, Request, Target};
use vipd::daemon::{self, Options};
use vipd::dataplane::XdpPreference;

#[derive(Parser)]
#[command(
    name = "vipd",
    version,
    about = "Virtual-IP failover with CARP, VIP ownership in XDP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    ucarp: UcarpArgs,
    /// Control socket (default: one per network namespace under /run/vipd).
    #[arg(long, global = true, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// bpffs directory for pinned links and maps (default: one per network namespace).
    #[arg(long, global = true, value_name = "DIR")]
    bpffs_dir: Option<PathBuf>,
    /// XDP attach mode: native (driver; generic only if refused) or generic (skb).
    #[arg(long, global = true, value_enum, default_value_t = XdpMode::Native)]
    xdp_mode: XdpMode,
    /// SCHED_FIFO priority of the daemon, so advertisements leave on time on a busy node
    /// (1-99; 0 keeps the ordinary scheduler).
    #[arg(long, global = true, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=99))]
    rt_priority: u8,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum XdpMode {
    Native,
    Generic,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the groups of a TOML configuration file.
    Run {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Show every group's state and the XDP counters of the running daemon.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Hand the VIPs of a group (or all) to a peer and stay BACKUP until promoted.
    Demote(TargetArgs),
    /// Let a demoted group take part in the election again.
    Promote(TargetArgs),
    /// Validate a configuration file.
    CheckConfig { file: PathBuf },
}

#[derive(Args)]
struct TargetArgs {
    /// The group's vhid.
    vhid: Option<u8>,
    /// Every group.
    #[arg(long, conflicts_with = "vhid")]
    all: bool,
}

/// ucarp 1.5.2's flags, with its meanings.
#[derive(Args, Default, PartialEq)]
struct UcarpArgs {
    /// Interface to bind to.
    #[arg(short = 'i', long = "interface")]
    interface: Option<String>,
    /// Persistent source address of this host.
    #[arg(short = 's', long = "srcip")]
    srcip: Option<String>,
    /// Multicast group (default 224.0.0.18).
    #[arg(short = 'm', long = "mcast")]
    mcast: Option<String>,
    /// Virtual IP identifier (1-255).
    #[arg(short = 'v', long = "vhid")]
    vhid: Option<u32>,
    /// Password.
    #[arg(short = 'p', long = "pass")]
    pass: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(short = 'o', long = "passfile")]
    passfile: Option<PathBuf>,
    /// Become master as soon as possible.
    #[arg(short = 'P', long = "preempt")]
    preempt: bool,
    /// Don't run the down script at start if backup.
    #[arg(short = 'n', long = "neutral")]
    neutral: bool,
    /// Virtual shared IP address, optionally with a prefix length (10.1.1.252/24).
    #[arg(short = 'a', long = "addr")]
    addr: Vec<String>,
    /// Advertisement base interval in seconds.
    #[arg(short = 'b', long = "advbase")]
    advbase: Option<u32>,
    /// Advertisement skew (0-254).
    #[arg(short = 'k', long = "advskew")]
    advskew: Option<u32>,
    /// Script run on becoming master: `<script> <interface> <vip> [xparam]`.
    #[arg(short = 'u', long = "upscript")]
    upscript: Option<PathBuf>,
    /// Script run on becoming backup.
    #[arg(short = 'd', long = "downscript")]
    downscript: Option<PathBuf>,
    /// Ratio to consider a master dead.
    #[arg(short = 'r', long = "deadratio")]
    deadratio: Option<u32>,
    /// Run the down script at exit.
    #[arg(short = 'z', long = "shutdown")]
    shutdown: bool,
    /// Run in the background.
    #[arg(short = 'B', long = "daemonize")]
    daemonize: bool,
    /// Extra parameter for the up/down scripts.
    #[arg(short = 'x', long = "xparam")]
    xparam: Option<String>,
    /// Ignore interface state (down, no carrier).
    #[arg(short = 'S', long = "ignoreifstate")]
    ignoreifstate: bool,
    /// Use broadcast instead of multicast advertisements.
    #[arg(short = 'M', long = "nomcast")]
    nomcast: bool,
    /// Debug output.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Syslog facility (accepted for compatibility; vipd logs to stderr).
    #[arg(short = 'f', long = "facility")]
    facility: Option<String>,
}

impl UcarpArgs {
    fn into_config(self) -> Result<Config, ConfigError> {
        let raw = RawGroup {
            interface: self.interface,
            vhid: self.vhid,
            vips: self.addr,
            srcip: self.srcip,
            password: self.pass,
            password_file: self.passfile,
            advbase: self.advbase,
            advskew: self.advskew,
            preempt: self.preempt,
            neutral: self.neutral,
            dead_ratio: self.deadratio,
            upscript: self.upscript,
            downscript: self.downscript,
            xparam: self.xparam,
            shutdown_script: self.shutdown,
            multicast: self.mcast,
            broadcast: self.nomcast,
            ignore_ifstate: self.ignoreifstate,
            ..RawGroup::default()
        };
        Config::from_raw(vec![raw], |_| String::from("--"))
    }
}

fn init_tracing(debug: bool) {
    let default = if debug { "vipd=debug" } else { "vipd=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Usage error: one line, exit code 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vipd: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return usage(first.trim_start_matches("error: "));
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let opts = Options {
        control_socket: cli
            .control_socket
            .clone()
            .unwrap_or_else(control::default_socket),
        bpffs_dir: cli
            .bpffs_dir
            .clone()
            .unwrap_or_else(vipd::dataplane::default_pin_dir),
        xdp_mode: match cli.xdp_mode {
            XdpMode::Native => XdpPreference::Native,
            XdpMode::Generic => XdpPreference::Generic,
        },
        rt_priority: (cli.rt_priority > 0).then_some(cli.rt_priority),
    };
    if cli.cmd.is_some() && cli.ucarp != UcarpArgs::default() {
        return usage("ucarp-style flags (-i, -v, ...) cannot be combined with a subcommand");
    }
    match cli.cmd {
        None => {
            let debug = cli.ucarp.debug;
            let daemonize = cli.ucarp.daemonize;
            let config = match cli.ucarp.into_config() {
                Ok(c) => c,
                Err(e) => return usage(flag_names(&e.to_string())),
            };
            serve(config, opts, debug, daemonize)
        }
        Some(Cmd::Run { config }) => match Config::load(&config) {
            Ok(c) => serve(c, opts, false, false),
            Err(e) => usage(e),
        },
        Some(Cmd::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                println!("{}: {} group(s), valid", file.display(), c.groups.len());
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        },
        Some(Cmd::Status { json }) => client(&opts, Request::Status, json),
        Some(Cmd::Demote(t)) => match target(t) {
            Ok(target) => client(&opts, Request::Demote { target }, false),
            Err(code) => code,
        },
        Some(Cmd::Promote(t)) => match target(t) {
            Ok(target) => client(&opts, Request::Promote { target }, false),
            Err(code) => code,
        },
    }
}

/// Config field names as the ucarp flags the user typed.
fn flag_names(msg: &str) -> String {
    const FLAGS: &[(&str, &str)] = &[
        ("--interface:", "--interface (-i):"),
        ("--vhid:", "--vhid (-v):"),
        ("--vips:", "--addr (-a):"),
        ("--srcip:", "--srcip (-s):"),
        ("--password:", "--pass (-p):"),
        ("--password_file:", "--passfile (-o):"),
        ("--advbase:", "--advbase (-b):"),
        ("--advskew:", "--advskew (-k):"),
        ("--dead_ratio:", "--deadratio (-r):"),
        ("--upscript:", "--upscript (-u):"),
        ("--downscript:", "--downscript (-d):"),
        ("--multicast:", "--mcast (-m):"),
    ];
    for (from, to) in FLAGS {
        if let Some(rest) = msg.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    msg.to_owned()
}

fn target(t: TargetArgs) -> Result<Target, ExitCode> {
    match (t.vhid, t.all) {
        (Some(0), _) => Err(usage("vhid: 0 is not in 1..=255")),
        (Some(v), false) => Ok(Target::Vhid(v)),
        (None, true) => Ok(Target::All),
        _ => Err(usage("give a VHID or --all")),
    }
}

fn serve(config: Config, opts: Options, debug: bool, daemonize: bool) -> ExitCode {
    init_tracing(debug);
    if daemonize && let Err(e) = nix::unistd::daemon(true, false) {
        eprintln!("vipd: cannot daemonize: {e}");
        return ExitCode::FAILURE;
    }
    let result = runtime().and_then(|rt| rt.block_on(daemon::run(config, opts)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(opts: &Options, req: Request, json: bool) -> ExitCode {
    let result = runtime().and_then(|rt| {
        rt.block_on(control::call(&opts.control_socket, &req))
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(Reply::Status(s)) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&s).expect("status serializes")
            );
            ExitCode::SUCCESS
        }
        Ok(Reply::Status(s)) => {
            print!("{}", control::render(&s));
            ExitCode::SUCCESS
        }
        Ok(Reply::Ok { changed }) => {
            let list: Vec<String> = changed.iter().map(|v| v.to_string()).collect();
            println!("ok: vhid {}", list.join(", "));
            ExitCode::SUCCESS
        }
        Ok(Reply::Error { message }) => usage(message),
        Err(e) => {
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
