//! The command line of `vipd`: ucarp's flags for one group, or a subcommand (`run`,
//! `reload`, `status`, `demote`, `promote`, `check-config`). The one definition the binary
//! parses and from which the man page and the shell completions are generated.
//!
//! This file depends on nothing but clap and std: `cargo xtask deb` compiles it into
//! xtask (which cannot link the vipd library before the XDP object exists).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where `vipd run` reads its groups unless told otherwise (`config::DEFAULT_PATH`).
pub const DEFAULT_CONFIG: &str = "/etc/vipd/vipd.toml";

/// Shown by `vipd --help` and as the man page's description.
const LONG_ABOUT: &str = "\
Virtual-IP failover with CARP, VIP ownership in XDP.

With ucarp's flags and no subcommand, vipd runs one CARP group as ucarp does (same flags, \
same up and down scripts, same wire format). `vipd run` runs every group of a TOML file \
(default /etc/vipd/vipd.toml). The other subcommands talk to the daemon running in the \
same network namespace through its control socket.";

/// Shown after the options by `vipd --help` and as the man page's extra sections.
const AFTER_LONG_HELP: &str = "\
Files:
  /etc/vipd/vipd.toml
      the configuration of `vipd run` (mode 600 if it holds a password)
  /run/vipd/netns-INODE.sock
      the control socket, one per network namespace
  /run/vipd/netns-INODE.lock
      the instance lock: one vipd per network namespace
  /var/lib/vipd/netns-INODE.demoted
      the groups demoted until `vipd promote`, kept across restarts
  /sys/fs/bpf/vipd/netns-INODE/
      pins of the maps of an adopted program

Signals:
  SIGHUP           read the configuration file again (as `vipd reload`)
  SIGUSR1          log the status as one JSON line
  SIGUSR2          demote every group, or promote them again
  SIGTERM, SIGINT  hand the VIPs over and stop

Exit status: 0 on success, 1 when the daemon fails or cannot be reached, 2 for a bad flag \
or configuration value (one line naming it).";

#[derive(Parser)]
#[command(
    name = "vipd",
    version,
    about = "Virtual-IP failover with CARP, VIP ownership in XDP",
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub ucarp: UcarpArgs,
    /// Control socket (default: one per network namespace under /run/vipd).
    #[arg(long, global = true, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    /// bpffs directory where adopted maps are pinned (default: one per network namespace).
    #[arg(long, global = true, value_name = "DIR")]
    pub bpffs_dir: Option<PathBuf>,
    /// Ingress hook: auto (native XDP on physical NICs other than virtio-net, TC ingress
    /// elsewhere), native (XDP in the driver; generic if refused), generic (XDP on the skb)
    /// or tc (TC ingress).
    #[arg(long, global = true, value_enum, default_value_t = XdpMode::Auto)]
    pub xdp_mode: XdpMode,
    /// SCHED_FIFO priority of the daemon, so advertisements leave on time on a busy node
    /// (1-99; 0 keeps the ordinary scheduler).
    #[arg(long, global = true, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=99))]
    pub rt_priority: u8,
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9477.
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum XdpMode {
    Auto,
    Native,
    Generic,
    Tc,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the groups of a TOML configuration file.
    Run {
        /// The TOML configuration file.
        #[arg(long, short = 'c', value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Log to syslog (facility daemon) instead of standard error, in the foreground.
        #[arg(long)]
        syslog: bool,
    },
    /// Make the running daemon read its configuration file again (as SIGHUP): added groups
    /// start, removed ones hand over, changed ones apply their settings, the rest go on
    /// untouched. An invalid file changes nothing.
    Reload,
    /// Show every group's state and the XDP counters of the running daemon.
    Status {
        /// Print the status as JSON (schema in docs/status-json.md).
        #[arg(long)]
        json: bool,
    },
    /// Hand the VIPs of a group (or all) to a peer and stay BACKUP until promoted.
    Demote(DemoteArgs),
    /// Let a demoted group take part in the election again.
    Promote(TargetArgs),
    /// Validate a configuration file.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

/// `vipd demote`'s arguments.
#[derive(Args)]
pub struct DemoteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Stay DRAINING until the connections to the VIPs have closed, or at most LIMIT
    /// seconds (default: the group's drain_limit, 60 s); `vipd status` shows what is left.
    #[arg(long, value_name = "LIMIT", num_args = 0..=1, require_equals = true)]
    pub drain: Option<Option<f64>>,
    /// Stay demoted across restarts of vipd and reboots, until `vipd promote` (maintenance).
    #[arg(long)]
    pub persist: bool,
}

#[derive(Args)]
pub struct TargetArgs {
    /// The group's vhid.
    pub vhid: Option<u8>,
    /// Every group.
    #[arg(long, conflicts_with = "vhid")]
    pub all: bool,
}

/// ucarp 1.5.2's flags, with its meanings.
#[derive(Args, Default, PartialEq)]
pub struct UcarpArgs {
    /// Interface to bind to.
    #[arg(short = 'i', long = "interface")]
    pub interface: Option<String>,
    /// Persistent source address of this host.
    #[arg(short = 's', long = "srcip")]
    pub srcip: Option<String>,
    /// Multicast group (default 224.0.0.18).
    #[arg(short = 'm', long = "mcast")]
    pub mcast: Option<String>,
    /// Virtual IP identifier (1-255).
    #[arg(short = 'v', long = "vhid")]
    pub vhid: Option<u32>,
    /// Password.
    #[arg(short = 'p', long = "pass")]
    pub pass: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(short = 'o', long = "passfile")]
    pub passfile: Option<PathBuf>,
    /// Become master as soon as possible.
    #[arg(short = 'P', long = "preempt")]
    pub preempt: bool,
    /// Don't run the down script at start if backup.
    #[arg(short = 'n', long = "neutral")]
    pub neutral: bool,
    /// Virtual shared IP address, optionally with a prefix length (10.1.1.252/24).
    #[arg(short = 'a', long = "addr")]
    pub addr: Vec<String>,
    /// Advertisement base interval in seconds.
    #[arg(short = 'b', long = "advbase")]
    pub advbase: Option<u32>,
    /// Advertisement skew (0-254).
    #[arg(short = 'k', long = "advskew")]
    pub advskew: Option<u32>,
    /// Script run on becoming master: `<script> <interface> <vip> [xparam]`.
    #[arg(short = 'u', long = "upscript")]
    pub upscript: Option<PathBuf>,
    /// Script run on becoming backup.
    #[arg(short = 'd', long = "downscript")]
    pub downscript: Option<PathBuf>,
    /// Ratio to consider a master dead.
    #[arg(short = 'r', long = "deadratio")]
    pub deadratio: Option<u32>,
    /// Run the down script at exit.
    #[arg(short = 'z', long = "shutdown")]
    pub shutdown: bool,
    /// Run in the background, logging to syslog.
    #[arg(short = 'B', long = "daemonize")]
    pub daemonize: bool,
    /// Extra parameter for the up/down scripts.
    #[arg(short = 'x', long = "xparam")]
    pub xparam: Option<String>,
    /// Ignore interface state (down, no carrier).
    #[arg(short = 'S', long = "ignoreifstate")]
    pub ignoreifstate: bool,
    /// Use broadcast instead of multicast advertisements.
    #[arg(short = 'M', long = "nomcast")]
    pub nomcast: bool,
    /// Advertise to this peer instead of the multicast group, and accept advertisements
    /// only from the peers given (repeat for each peer).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peer: Vec<String>,
    /// Accept peers' advertisements whatever their TTL (peers behind a router); with
    /// --peer only.
    #[arg(long = "no-peer-ttl-check")]
    pub no_peer_ttl_check: bool,
    /// Debug output.
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Syslog facility of the log with -B: daemon (default), user, local0..local7, ...
    #[arg(short = 'f', long = "facility")]
    pub facility: Option<String>,
    /// Run the up and down scripts as this user (and its groups) instead of root.
    #[arg(long = "script-user", value_name = "USER")]
    pub script_user: Option<String>,
    /// Run scripts that others than root or the script user could change.
    #[arg(long = "no-script-security")]
    pub no_script_security: bool,
    /// After a graceful take-over, forward the previous master's connections to it this
    /// many seconds (default 60; 0: never); also `vipd demote --drain`'s default limit.
    #[arg(long = "drain-limit", value_name = "SECS")]
    pub drain_limit: Option<f64>,
    /// At a stop (SIGTERM), wait at most this many seconds for the connections to the
    /// VIPs to close before exiting (default 30; 0: exit once handed over).
    #[arg(long = "drain-on-stop", value_name = "SECS")]
    pub drain_on_stop: Option<f64>,
}

/// The command line's definition, as clap builds it.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_definition_is_consistent() {
        super::command().debug_assert();
    }
}
