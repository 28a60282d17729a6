//! Configuration: ucarp's command-line flags (one group) or a TOML file (any number of
//! groups), both validated into the same [`Config`]. Every error names the field at fault.
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::carp::{self, Key};
use crate::election::Params;
use crate::scripts::{self, ScriptUser};
use crate::trackers::{self, TrackerConfig, TrackerKind};

/// The longest any timeout or interval may be (one day), in milliseconds.
pub const MAX_MS: u64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Where the VIP addresses live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressMode {
    /// Configured on every node for the daemon's lifetime; ownership is decided in XDP.
    #[default]
    Always,
    /// Added on becoming MASTER and removed on leaving it, as ucarp's scripts do.
    Move,
}

/// How a group's demotion (the sum of the weights of its trackers that are down) goes on
/// the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemoteMode {
    /// Added to advskew, capped at 254: what ucarp peers understand.
    #[default]
    Advskew,
    /// In the demote byte of the advertisement, as OpenBSD's carp(4) does.
    Demote,
}

/// A group's use of a tracker.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackRef {
    /// The tracker's name.
    pub tracker: String,
    /// Given: added to the group's demotion while the tracker is down (for a file
    /// tracker: its value times the weight). `None`: the group is in FAULT while the
    /// tracker is down (for a file tracker: while its value is not 0).
    pub weight: Option<u32>,
}

/// The largest tracker weight.
pub const MAX_WEIGHT: u32 = 254;

/// A VIP with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Vip {
    type Err = String;
    fn from_str(s: &str) -> Result<Vip, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a,
                p.parse::<u8>()
                    .map_err(|_| format!("bad prefix length in {s:?}"))?,
            ),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
        if prefix == 0 || prefix > 32 {
            return Err(format!("prefix length of {s:?} must be 1..=32"));
        }
        if addr.is_multicast() || addr.is_unspecified() || addr.is_broadcast() {
            return Err(format!("{addr} cannot be a virtual address"));
        }
        Ok(Vip { addr, prefix })
    }
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One CARP group, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub interface: String,
    pub vhid: u8,
    pub vips: Vec<Vip>,
    /// Our source address; `None`: the interface's first IPv4 address.
    pub srcip: Option<Ipv4Addr>,
    pub key: Key,
    pub advbase: u8,
    pub advskew: u8,
    pub preempt: bool,
    pub neutral: bool,
    pub dead_ratio: u32,
    pub upscript: Option<PathBuf>,
    pub downscript: Option<PathBuf>,
    pub xparam: Option<String>,
    /// Run the down script when vipd exits (`-z`).
    pub shutdown_script: bool,
    /// Destination of advertisements: 224.0.0.18, another group, or 255.255.255.255 (`-M`).
    pub destination: Ipv4Addr,
    pub address_mode: AddressMode,
    pub garp_count: u32,
    pub garp_interval: Duration,
    /// Announce the VIPs again this often while MASTER (keepalived's
    /// `garp_master_refresh`); `None`: only on taking over.
    pub garp_refresh: Option<Duration>,
    pub script_timeout: Duration,
    /// Run the scripts as this user; `None`: as root, as ucarp does.
    pub script_user: Option<ScriptUser>,
    /// Ignore the interface's link state (`-S`).
    pub ignore_ifstate: bool,
    /// What the HMAC of advertisements covers (`authenticate`).
    pub coverage: carp::Coverage,
    /// The trackers the group depends on, each named once and defined in
    /// [`Config::trackers`].
    pub track: Vec<TrackRef>,
    /// Run on every state change as `<notify> <interface> <vhid> <STATE> <advskew +
    /// demotion>`, as `script_user`, under `script_timeout`.
    pub notify: Option<PathBuf>,
    pub demote_mode: DemoteMode,
    /// Groups with the same sync group stay together: when one goes to FAULT the others
    /// do, and when one leaves MASTER the others hand over too.
    pub sync_group: Option<String>,
    /// After a graceful take-over, how long this node forwards the previous master's
    /// connections to it; also the default limit of `vipd demote --drain`. Zero: never.
    pub drain_limit: Duration,
    /// At a stop (SIGTERM, `systemctl stop`), how long the group drains its connections to
    /// the VIPs before vipd exits. Zero: it exits once handed over.
    pub drain_on_stop: Duration,
}

/// Where `vipd run` reads its groups unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/vipd/vipd.toml";

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub groups: Vec<GroupConfig>,
    /// Every tracker, names unique; the groups refer to them by name.
    pub trackers: Vec<TrackerConfig>,
    /// What is valid but unsafe (a password others can read), one line each, for the log.
    pub warnings: Vec<String>,
}

/// A group as written in TOML (or assembled from ucarp's flags) before validation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub interface: Option<String>,
    pub vhid: Option<u32>,
    #[serde(default)]
    pub vips: Vec<String>,
    pub srcip: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub advbase: Option<u32>,
    pub advskew: Option<u32>,
    #[serde(default)]
    pub preempt: bool,
    #[serde(default)]
    pub neutral: bool,
    pub dead_ratio: Option<u32>,
    pub upscript: Option<PathBuf>,
    pub downscript: Option<PathBuf>,
    pub xparam: Option<String>,
    #[serde(default)]
    pub shutdown_script: bool,
    pub multicast: Option<String>,
    #[serde(default)]
    pub broadcast: bool,
    pub address_mode: Option<AddressMode>,
    pub garp_count: Option<u32>,
    pub garp_interval_ms: Option<u64>,
    pub garp_refresh_ms: Option<u64>,
    /// Forward the previous master's connections this long after a graceful take-over
    /// (default 60000; 0: never).
    pub drain_limit_ms: Option<u64>,
    /// At a stop, drain the connections to the VIPs this long at most before exiting
    /// (default 30000; 0: do not wait).
    pub drain_on_stop_ms: Option<u64>,
    pub script_timeout_ms: Option<u64>,
    /// "carp" (default, as ucarp) or "all" (vipd nodes only: also timing, demote, sender).
    pub authenticate: Option<carp::Coverage>,
    /// User the scripts run as (default root).
    pub script_user: Option<String>,
    /// Refuse scripts that anyone but root or the script user could change (default true).
    pub script_security: Option<bool>,
    #[serde(default)]
    pub ignore_ifstate: bool,
    /// Trackers the group depends on, by name.
    #[serde(default)]
    pub track: Vec<TrackRef>,
    /// Script run on every state change.
    pub notify: Option<PathBuf>,
    /// "advskew" (default) or "demote".
    pub demote_mode: Option<DemoteMode>,
    /// Groups with the same name stay together (keepalived's vrrp_sync_group).
    pub sync_group: Option<String>,
}

/// A tracker as written in TOML (`[[tracker]]`) before validation. Which keys apply
/// depends on `type`; a key of another type is an error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracker {
    pub name: Option<String>,
    /// interface, process, tcp, http, script or file.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    /// interface: the interface's name.
    pub interface: Option<String>,
    /// process: the process name (/proc/PID/comm).
    pub process_name: Option<String>,
    /// process: a substring of the command line.
    pub process_cmdline: Option<String>,
    /// process: a file holding the pid.
    pub pidfile: Option<PathBuf>,
    /// tcp, http: `ip:port`.
    pub address: Option<String>,
    /// http: the Host header (default: the address).
    pub host: Option<String>,
    /// http: the path requested (default `/`); file: the file read.
    pub path: Option<String>,
    /// http: the status that means healthy (default 200).
    pub expect_status: Option<u32>,
    /// tcp, http, script: time between probes (default 1000, at least 10).
    pub interval_ms: Option<u64>,
    /// tcp, http, script: a probe's limit (default: the interval, at most the interval).
    pub timeout_ms: Option<u64>,
    /// script: the command, an absolute path.
    pub command: Option<PathBuf>,
    /// script: its arguments.
    pub args: Option<Vec<String>>,
    /// script: run it as this user (default root).
    pub script_user: Option<String>,
    /// script: refuse a command others could change (default true).
    pub script_security: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "group")]
    groups: Vec<RawGroup>,
    #[serde(default, rename = "tracker")]
    trackers: Vec<RawTracker>,
}

/// The mode of `path` when group or others can read it.
fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Reads the password file as ucarp does: its first line.
/// At most `limit` bytes from the start of a regular file (anything else is an error, so
/// that a FIFO never blocks).
fn read_head(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = Vec::new();
    file.take(limit).read_to_end(&mut text)?;
    Ok(text)
}

fn read_password_file(
    field: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, ConfigError> {
    // The first line only, and at most 4 KiB of it: a device or a FIFO given by mistake
    // never makes validation read forever or wait.
    let text =
        read_head(path, 4096).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    if let Some(mode) = readable_by_others(path) {
        warnings.push(format!(
            "password file {} is readable by group or others (mode {mode:o}); chmod 600 it",
            path.display()
        ));
    }
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(invalid(
            field,
            format!("{} holds no password", path.display()),
        ));
    }
    Ok(line.to_vec())
}

/// A tracker or sync group name: 1 to 64 letters, digits, '-', '_' or '.'.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `value` as a byte, or an error naming `field` and its valid `range`.
fn byte(field: &str, value: u32, range: &str) -> Result<u8, ConfigError> {
    u8::try_from(value).map_err(|_| invalid(field, format!("{value} is not in {range}")))
}

/// A duration option in milliseconds: `default` when absent, otherwise in `min..=MAX_MS`.
fn millis(
    field: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    let ms = value.unwrap_or(default);
    if ms < min.max(1) {
        return Err(invalid(
            field,
            if min <= 1 {
                format!("{ms} must be above 0 (milliseconds)")
            } else {
                format!("{ms} is below {min} (milliseconds)")
            },
        ));
    }
    if ms > MAX_MS {
        return Err(invalid(
            field,
            format!("{ms} is above {MAX_MS} (one day, in milliseconds)"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// A syslog facility by ucarp's name for it (`-f`): `daemon` (its default), `user`,
/// `local0`..`local7`, `auth`, ... Case does not matter.
pub fn syslog_facility(name: &str) -> Result<syslog::Facility, ConfigError> {
    use syslog::Facility::*;
    let facility = match name.to_ascii_lowercase().as_str() {
        "auth" | "security" => LOG_AUTH,
        "authpriv" => LOG_AUTHPRIV,
        "cron" => LOG_CRON,
        "daemon" => LOG_DAEMON,
        "ftp" => LOG_FTP,
        "kern" => LOG_KERN,
        "lpr" => LOG_LPR,
        "mail" => LOG_MAIL,
        "news" => LOG_NEWS,
        "syslog" => LOG_SYSLOG,
        "user" => LOG_USER,
        "uucp" => LOG_UUCP,
        "local0" => LOG_LOCAL0,
        "local1" => LOG_LOCAL1,
        "local2" => LOG_LOCAL2,
        "local3" => LOG_LOCAL3,
        "local4" => LOG_LOCAL4,
        "local5" => LOG_LOCAL5,
        "local6" => LOG_LOCAL6,
        "local7" => LOG_LOCAL7,
        _ => {
            return Err(invalid(
                "facility",
                format!(
                    "unknown syslog facility {name:?} (daemon, user, local0..local7, auth, \
                     authpriv, cron, ftp, kern, lpr, mail, news, syslog, uucp)"
                ),
            ));
        }
    };
    Ok(facility)
}

impl RawGroup {
    /// Validates one group; `at` prefixes field names (e.g. `group[2].`).
    pub fn validate(self, at: &str) -> Result<GroupConfig, ConfigError> {
        self.validate_noting(at, &mut Vec::new())
    }

    /// [`RawGroup::validate`], adding to `warnings` what is valid but unsafe.
    pub fn validate_noting(
        self,
        at: &str,
        warnings: &mut Vec<String>,
    ) -> Result<GroupConfig, ConfigError> {
        let f = |name: &str| format!("{at}{name}");
        let interface = self
            .interface
            .filter(|i| !i.is_empty())
            .ok_or_else(|| invalid(f("interface"), "is required"))?;
        if interface.len() > 15 || interface.contains('/') {
            return Err(invalid(
                f("interface"),
                format!("{interface:?} is not an interface name"),
            ));
        }
        let vhid = self.vhid.ok_or_else(|| invalid(f("vhid"), "is required"))?;
        let vhid = byte(&f("vhid"), vhid, "1..=255")?;
        if self.vips.is_empty() {
            return Err(invalid(
                f("vips"),
                "at least one virtual address is required",
            ));
        }
        let mut vips = Vec::new();
        for v in &self.vips {
            let vip: Vip = v.parse().map_err(|e| invalid(f("vips"), e))?;
            if vips.iter().any(|x: &Vip| x.addr == vip.addr) {
                return Err(invalid(f("vips"), format!("{} is listed twice", vip.addr)));
            }
            vips.push(vip);
        }
        let srcip = match self.srcip {
            None => None,
            Some(s) => {
                let a = s
                    .parse::<Ipv4Addr>()
                    .map_err(|_| invalid(f("srcip"), format!("{s:?} is not an IPv4 address")))?;
                let what = if a.is_unspecified() {
                    Some("the unspecified address")
                } else if a.is_broadcast() {
                    Some("the broadcast address")
                } else if a.is_multicast() {
                    Some("a multicast address")
                } else if a.is_loopback() {
                    Some("a loopback address")
                } else if vips.iter().any(|v| v.addr == a) {
                    Some("one of the group's virtual addresses")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(invalid(
                        f("srcip"),
                        format!("{a} is {what}; give this host's own unicast address"),
                    ));
                }
                Some(a)
            }
        };
        let password = match (self.password, self.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    f("password"),
                    "give a password or a password file, not both",
                ));
            }
            (Some(p), None) if !p.is_empty() => p.into_bytes(),
            (None, Some(path)) => read_password_file(&f("password_file"), &path, warnings)?,
            _ => {
                return Err(invalid(
                    f("password"),
                    "a password or a password file is required",
                ));
            }
        };
        let key = Key::try_new(&password).map_err(|e| invalid(f("password"), e.to_string()))?;
        let advbase = byte(&f("advbase"), self.advbase.unwrap_or(1), "0..=254")?;
        let advskew = byte(&f("advskew"), self.advskew.unwrap_or(0), "0..=254")?;
        let dead_ratio = self.dead_ratio.unwrap_or(3);
        byte(&f("dead_ratio"), dead_ratio, "1..=255")?;
        Params::check_timing(vhid, advbase, advskew, dead_ratio)
            .map_err(|e| invalid(f(e.field()), e.to_string()))?;
        let destination = if self.broadcast {
            Ipv4Addr::BROADCAST
        } else {
            match self.multicast {
                None => carp::DEFAULT_GROUP,
                Some(m) => {
                    let a: Ipv4Addr = m.parse().map_err(|_| {
                        invalid(f("multicast"), format!("{m:?} is not an IPv4 address"))
                    })?;
                    if !a.is_multicast() {
                        return Err(invalid(
                            f("multicast"),
                            format!("{a} is not a multicast group"),
                        ));
                    }
                    a
                }
            }
        };
        let script_user = match &self.script_user {
            None => None,
            Some(name) => Some(ScriptUser::lookup(name).map_err(|e| invalid(f("script_user"), e))?),
        };
        for (name, script) in [
            ("upscript", &self.upscript),
            ("downscript", &self.downscript),
            ("notify", &self.notify),
        ] {
            let Some(s) = script else { continue };
            check_script_path(
                &f(name),
                s,
                script_user.as_ref(),
                self.script_security.unwrap_or(true),
            )?;
        }
        let garp_count = self.garp_count.unwrap_or(3);
        if !(1..=100).contains(&garp_count) {
            return Err(invalid(
                f("garp_count"),
                format!("{garp_count} is not in 1..=100"),
            ));
        }
        let garp_interval = millis(&f("garp_interval_ms"), self.garp_interval_ms, 200, 1)?;
        let garp_refresh = match self.garp_refresh_ms {
            None => None,
            Some(ms) => Some(millis(&f("garp_refresh_ms"), Some(ms), 0, 10)?),
        };
        let script_timeout = millis(&f("script_timeout_ms"), self.script_timeout_ms, 10_000, 1)?;
        let drain_limit = match self.drain_limit_ms {
            Some(0) => Duration::ZERO,
            ms => millis(&f("drain_limit_ms"), ms, DEFAULT_DRAIN_LIMIT_MS, 1)?,
        };
        let drain_on_stop = match self.drain_on_stop_ms {
            Some(0) => Duration::ZERO,
            ms => millis(&f("drain_on_stop_ms"), ms, DEFAULT_DRAIN_ON_STOP_MS, 1)?,
        };
        let mut named = HashSet::new();
        for t in &self.track {
            if !named.insert(t.tracker.as_str()) {
                return Err(invalid(
                    f("track"),
                    format!("tracker {:?} is listed twice", t.tracker),
                ));
            }
            if let Some(w) = t.weight
                && !(1..=MAX_WEIGHT).contains(&w)
            {
                return Err(invalid(
                    f("track"),
                    format!(
                        "weight {w} of tracker {:?} is not in 1..={MAX_WEIGHT} (leave the \
                         weight out to go to FAULT while the tracker is down)",
                        t.tracker
                    ),
                ));
            }
        }
        Ok(GroupConfig {
            interface,
            vhid,
            vips,
            srcip,
            key,
            advbase,
            advskew,
            preempt: self.preempt,
            neutral: self.neutral,
            dead_ratio,
            upscript: self.upscript,
            downscript: self.downscript,
            xparam: self.xparam,
            shutdown_script: self.shutdown_script,
            destination,
            address_mode: self.address_mode.unwrap_or_default(),
            garp_count,
            garp_interval,
            garp_refresh,
            script_timeout,
            script_user,
            ignore_ifstate: self.ignore_ifstate,
            coverage: self.authenticate.unwrap_or_default(),
            track: self.track,
            notify: self.notify,
            demote_mode: self.demote_mode.unwrap_or_default(),
            sync_group: match self.sync_group {
                Some(name) if !name_ok(&name) => {
                    return Err(invalid(
                        f("sync_group"),
                        format!("{name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
                    ));
                }
                other => other,
            },
            drain_limit,
            drain_on_stop,
        })
    }
}

/// How long a new master forwards the previous master's connections, and how long `vipd
/// demote --drain` waits for them, unless configured.
pub const DEFAULT_DRAIN_LIMIT_MS: u64 = 60_000;
/// How long a stop waits for the connections to the VIPs to close, unless configured.
pub const DEFAULT_DRAIN_ON_STOP_MS: u64 = 30_000;

/// Refuses a script that does not exist, or (with `security`) that anyone but root or
/// `user` could change.
fn check_script_path(
    field: &str,
    path: &Path,
    user: Option<&ScriptUser>,
    security: bool,
) -> Result<(), ConfigError> {
    if !path.exists() {
        return Err(invalid(field, format!("{} does not exist", path.display())));
    }
    if security {
        scripts::check_script(path, user).map_err(|e| {
            let who = user.map(|u| format!(" or {}", u.name)).unwrap_or_default();
            invalid(
                field,
                format!(
                    "{e}; a script and every directory above it must be changeable only by \
                     root{who}"
                ),
            )
        })?;
    }
    Ok(())
}

/// The tracker types, as `type` spells them.
const TRACKER_TYPES: &str = "interface, process, tcp, http, script or file";

/// The probe interval of tcp, http and script trackers when none is given (their
/// timeout defaults to their interval).
const DEFAULT_INTERVAL_MS: u64 = 1000;

impl RawTracker {
    /// Validates one tracker; `at` prefixes field names (e.g. `tracker[2].`).
    pub fn validate(
        self,
        at: &str,
        warnings: &mut Vec<String>,
    ) -> Result<TrackerConfig, ConfigError> {
        let f = |name: &str| format!("{at}{name}");
        let name = self
            .name
            .clone()
            .ok_or_else(|| invalid(f("name"), "is required"))?;
        if !name_ok(&name) {
            return Err(invalid(
                f("name"),
                format!("{name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        let kind = self
            .kind
            .clone()
            .ok_or_else(|| invalid(f("type"), format!("is required ({TRACKER_TYPES})")))?;
        // The keys each type takes, besides name, type, rise and fall.
        let keys: &[&str] = match kind.as_str() {
            "interface" => &["interface"],
            "process" => &["process_name", "process_cmdline", "pidfile"],
            "tcp" => &["address", "interval_ms", "timeout_ms"],
            "http" => &[
                "address",
                "host",
                "path",
                "expect_status",
                "interval_ms",
                "timeout_ms",
            ],
            "script" => &[
                "command",
                "args",
                "interval_ms",
                "timeout_ms",
                "script_user",
                "script_security",
            ],
            "file" => &["path"],
            other => {
                return Err(invalid(
                    f("type"),
                    format!("unknown tracker type {other:?} ({TRACKER_TYPES})"),
                ));
            }
        };
        for (key, given) in [
            ("interface", self.interface.is_some()),
            ("process_name", self.process_name.is_some()),
            ("process_cmdline", self.process_cmdline.is_some()),
            ("pidfile", self.pidfile.is_some()),
            ("address", self.address.is_some()),
            ("host", self.host.is_some()),
            ("path", self.path.is_some()),
            ("expect_status", self.expect_status.is_some()),
            ("interval_ms", self.interval_ms.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("command", self.command.is_some()),
            ("args", self.args.is_some()),
            ("script_user", self.script_user.is_some()),
            ("script_security", self.script_security.is_some()),
        ] {
            if given && !keys.contains(&key) {
                return Err(invalid(f(key), format!("is not a key of {kind} trackers")));
            }
        }
        let counts = !matches!(kind.as_str(), "interface" | "file");
        let count = |field: &str, value: Option<u32>| -> Result<u32, ConfigError> {
            let v = value.unwrap_or(1);
            if v == 0 {
                return Err(invalid(f(field), "0 must be at least 1"));
            }
            if v != 1 && !counts {
                return Err(invalid(
                    f(field),
                    format!(
                        "{kind} trackers report each change as it happens; rise and fall \
                         (other than 1) are for process, tcp, http and script trackers"
                    ),
                ));
            }
            Ok(v)
        };
        let rise = count("rise", self.rise)?;
        let fall = count("fall", self.fall)?;
        let timing = || -> Result<(std::time::Duration, std::time::Duration), ConfigError> {
            let min = trackers::MIN_INTERVAL.as_millis() as u64;
            let interval = millis(
                &f("interval_ms"),
                self.interval_ms,
                DEFAULT_INTERVAL_MS,
                min,
            )?;
            let interval_ms = interval.as_millis() as u64;
            let timeout = millis(&f("timeout_ms"), self.timeout_ms, interval_ms, 1)?;
            if timeout > interval {
                return Err(invalid(
                    f("timeout_ms"),
                    format!(
                        "{} is above interval_ms ({interval_ms})",
                        timeout.as_millis()
                    ),
                ));
            }
            Ok((interval, timeout))
        };
        let address = || -> Result<SocketAddr, ConfigError> {
            let a = self
                .address
                .as_deref()
                .ok_or_else(|| invalid(f("address"), "is required"))?;
            let addr: SocketAddr = a.parse().map_err(|_| {
                invalid(
                    f("address"),
                    format!("{a:?} is not an address with a port (127.0.0.1:80, [::1]:80)"),
                )
            })?;
            if addr.port() == 0 {
                return Err(invalid(f("address"), format!("{a:?} has port 0")));
            }
            Ok(addr)
        };
        let kind = match kind.as_str() {
            "interface" => {
                let interface = self
                    .interface
                    .clone()
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| invalid(f("interface"), "is required"))?;
                if interface.len() > 15
                    || interface.contains('/')
                    || interface
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(invalid(
                        f("interface"),
                        format!("{interface:?} is not an interface name"),
                    ));
                }
                TrackerKind::Interface { interface }
            }
            "process" => {
                let given: Vec<&str> = [
                    ("process_name", self.process_name.is_some()),
                    ("process_cmdline", self.process_cmdline.is_some()),
                    ("pidfile", self.pidfile.is_some()),
                ]
                .into_iter()
                .filter_map(|(k, g)| g.then_some(k))
                .collect();
                match given.as_slice() {
                    [] => {
                        return Err(invalid(
                            f("process_name"),
                            "give one of process_name, process_cmdline or pidfile",
                        ));
                    }
                    [_] => {}
                    [first, second, ..] => {
                        return Err(invalid(
                            f(second),
                            format!(
                                "give only one of process_name, process_cmdline or pidfile \
                                 ({first} is given too)"
                            ),
                        ));
                    }
                }
                if let Some(n) = &self.process_name
                    && (n.is_empty() || n.contains('/'))
                {
                    return Err(invalid(
                        f("process_name"),
                        format!("{n:?} is not a process name (/proc/PID/comm, no path)"),
                    ));
                }
                if self.process_cmdline.as_deref() == Some("") {
                    return Err(invalid(
                        f("process_cmdline"),
                        "an empty command line would match every process",
                    ));
                }
                if self
                    .pidfile
                    .as_ref()
                    .is_some_and(|p| p.as_os_str().is_empty())
                {
                    return Err(invalid(f("pidfile"), "is empty"));
                }
                TrackerKind::Process {
                    name: self.process_name.clone(),
                    cmdline: self.process_cmdline.clone(),
                    pidfile: self.pidfile.clone(),
                }
            }
            "tcp" => {
                let address = address()?;
                let (interval, timeout) = timing()?;
                TrackerKind::Tcp {
                    address,
                    interval,
                    timeout,
                }
            }
            "http" => {
                let address = address()?;
                let token = |field: &str, v: &str| -> Result<(), ConfigError> {
                    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(invalid(
                            f(field),
                            format!(
                                "{v:?} must be non-empty, without spaces or control characters"
                            ),
                        ));
                    }
                    Ok(())
                };
                let path = self.path.clone().unwrap_or_else(|| "/".to_owned());
                token("path", &path)?;
                if !path.starts_with('/') {
                    return Err(invalid(f("path"), format!("{path:?} must start with /")));
                }
                let host = match &self.host {
                    Some(h) => h.clone(),
                    None if address.port() == 80 => match address {
                        SocketAddr::V4(a) => a.ip().to_string(),
                        SocketAddr::V6(a) => format!("[{}]", a.ip()),
                    },
                    None => address.to_string(),
                };
                token("host", &host)?;
                let expect_status = self.expect_status.unwrap_or(200);
                if !(100..=599).contains(&expect_status) {
                    return Err(invalid(
                        f("expect_status"),
                        format!("{expect_status} is not in 100..=599"),
                    ));
                }
                let (interval, timeout) = timing()?;
                TrackerKind::Http {
                    address,
                    host,
                    path,
                    expect_status: expect_status as u16,
                    interval,
                    timeout,
                }
            }
            "script" => {
                let command = self
                    .command
                    .clone()
                    .filter(|c| !c.as_os_str().is_empty())
                    .ok_or_else(|| invalid(f("command"), "is required"))?;
                if !command.is_absolute() {
                    return Err(invalid(
                        f("command"),
                        format!("{} is not an absolute path", command.display()),
                    ));
                }
                let user = match &self.script_user {
                    None => None,
                    Some(u) => {
                        Some(ScriptUser::lookup(u).map_err(|e| invalid(f("script_user"), e))?)
                    }
                };
                check_script_path(
                    &f("command"),
                    &command,
                    user.as_ref(),
                    self.script_security.unwrap_or(true),
                )?;
                let args = self.args.clone().unwrap_or_default();
                if let Some(i) = args.iter().position(|a| a.contains('\0')) {
                    return Err(invalid(f("args"), format!("argument {i} holds a NUL byte")));
                }
                let (interval, timeout) = timing()?;
                TrackerKind::Script {
                    command,
                    args,
                    interval,
                    timeout,
                    user,
                }
            }
            "file" => {
                let path = self
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .ok_or_else(|| invalid(f("path"), "is required"))?;
                if path.file_name().is_none() || path.as_os_str().as_encoded_bytes().ends_with(b"/")
                {
                    return Err(invalid(
                        f("path"),
                        format!("{} does not name a file", path.display()),
                    ));
                }
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                    _ => PathBuf::from("."),
                };
                match std::fs::metadata(&dir) {
                    Ok(md) if md.is_dir() => {
                        if md.mode() & 0o022 != 0 {
                            warnings.push(format!(
                                "tracker {name:?}: others than root can write in {} and so \
                                 set the value of {}",
                                dir.display(),
                                path.display()
                            ));
                        }
                    }
                    _ => {
                        return Err(invalid(
                            f("path"),
                            format!("directory {} does not exist", dir.display()),
                        ));
                    }
                }
                TrackerKind::File { path }
            }
            _ => unreachable!("type checked above"),
        };
        let config = TrackerConfig {
            name,
            kind,
            rise,
            fall,
        };
        config.check().map_err(|e| invalid(f("type"), e))?;
        Ok(config)
    }
}

impl Config {
    /// Validates a set of groups without trackers (as ucarp's flags give them): each group
    /// on its own, then no vhid twice on one interface and no VIP in two groups of one
    /// interface.
    pub fn from_raw(
        groups: Vec<RawGroup>,
        prefix: impl Fn(usize) -> String,
    ) -> Result<Config, ConfigError> {
        Config::from_parts(groups, Vec::new(), prefix)
    }

    /// [`Config::from_raw`] with trackers: each validated (`tracker[i].`), names unique,
    /// and every tracker a group names defined.
    pub fn from_parts(
        groups: Vec<RawGroup>,
        raw_trackers: Vec<RawTracker>,
        prefix: impl Fn(usize) -> String,
    ) -> Result<Config, ConfigError> {
        if groups.is_empty() {
            return Err(invalid("group", "the configuration defines no group"));
        }
        let mut warnings = Vec::new();
        let mut trackers = Vec::new();
        let mut by_name = HashMap::new();
        for (i, raw) in raw_trackers.into_iter().enumerate() {
            let t = raw.validate(&format!("tracker[{i}]."), &mut warnings)?;
            if let Some(first) = by_name.insert(t.name.clone(), i) {
                return Err(invalid(
                    format!("tracker[{i}].name"),
                    format!("{:?} is already the name of tracker[{first}]", t.name),
                ));
            }
            trackers.push(t);
        }
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.validate_noting(&prefix(i), &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        let mut vips = HashSet::new();
        for (i, g) in groups.iter().enumerate() {
            if !seen.insert((g.interface.clone(), g.vhid)) {
                return Err(invalid(
                    format!("{}vhid", prefix(i)),
                    format!("vhid {} is already used on {}", g.vhid, g.interface),
                ));
            }
            for v in &g.vips {
                if !vips.insert((g.interface.clone(), v.addr)) {
                    return Err(invalid(
                        format!("{}vips", prefix(i)),
                        format!("{} is already in another group on {}", v.addr, g.interface),
                    ));
                }
            }
            for t in &g.track {
                if !by_name.contains_key(&t.tracker) {
                    return Err(invalid(
                        format!("{}track", prefix(i)),
                        format!("no tracker is named {:?}", t.tracker),
                    ));
                }
            }
        }
        for t in &trackers {
            if !groups
                .iter()
                .any(|g| g.track.iter().any(|r| r.tracker == t.name))
            {
                warnings.push(format!("tracker {:?} is used by no group", t.name));
            }
        }
        Ok(Config {
            groups,
            trackers,
            warnings,
        })
    }

    /// Parses and validates a TOML configuration.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_toml(path, text).map(|(c, _)| c)
    }

    /// The configuration, and whether a group gives its password in the file itself.
    fn parse_toml(path: &Path, text: &str) -> Result<(Config, bool), ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned()
                + &e.span()
                    .map(|s| format!(" (at line {})", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default(),
        })?;
        let inline = raw.groups.iter().any(|g| g.password.is_some());
        Ok((
            Config::from_parts(raw.groups, raw.trackers, |i| format!("group[{i}]."))?,
            inline,
        ))
    }

    /// Reads, parses and validates a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (mut config, inline) = Config::parse_toml(path, &text)?;
        if inline && let Some(mode) = readable_by_others(path) {
            config.warnings.insert(
                0,
                format!(
                    "{} holds a password and is readable by group or others (mode {mode:o}); \
                     chmod 600 it",
                    path.display()
                ),
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("test.toml"), text)
    }

    #[test]
    fn full_example_parses() {
        let c = parse(include_str!("../../vipd.example.toml")).unwrap();
        assert_eq!(c.groups.len(), 2);
        assert_eq!(c.groups[0].vips[0], "10.0.0.100/24".parse().unwrap());
        assert_eq!(c.groups[1].address_mode, AddressMode::Move);
        assert_eq!(
            c.groups[0].track,
            [
                TrackRef {
                    tracker: "web".into(),
                    weight: Some(50)
                },
                TrackRef {
                    tracker: "uplink".into(),
                    weight: None
                }
            ]
        );
        assert_eq!(c.groups[0].demote_mode, DemoteMode::Advskew);
        let names: Vec<_> = c.trackers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web", "uplink", "nginx"]);
        assert_eq!(
            c.trackers[0],
            TrackerConfig {
                name: "web".into(),
                kind: TrackerKind::Http {
                    address: "127.0.0.1:80".parse().unwrap(),
                    host: "127.0.0.1".into(),
                    path: "/health".into(),
                    expect_status: 200,
                    interval: Duration::from_millis(1000),
                    timeout: Duration::from_millis(500),
                },
                rise: 2,
                fall: 2,
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_follow_ucarp() {
        let c = parse("[[group]]\ninterface='eth0'\nvhid=7\nvips=['10.1.1.252']\npassword='x'\n")
            .unwrap();
        let g = &c.groups[0];
        assert_eq!((g.advbase, g.advskew, g.dead_ratio), (1, 0, 3));
        assert_eq!(g.vips[0].prefix, 32);
        assert_eq!(g.destination, Ipv4Addr::new(224, 0, 0, 18));
        assert!(!g.preempt && !g.neutral);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "[[group]]\ninterface='eth0'\nvhid=0\nvips=['10.0.0.1']\npassword='x'",
                "group[0].vhid: 0 is not in 1..=255",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=300\nvips=['10.0.0.1']\npassword='x'",
                "group[0].vhid: 300 is not in 1..=255",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.300']\npassword='x'",
                "group[0].vips: \"10.0.0.300\" is not an IPv4 address",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1/33']\npassword='x'",
                "group[0].vips: prefix length of \"10.0.0.1/33\" must be 1..=32",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='twenty-bytes-exactly'",
                "group[0].password: password of 20 bytes: ucarp accepts at most 19",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']",
                "group[0].password: a password or a password file is required",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvbase=0",
                "group[0].advbase: advbase 0 needs an advskew above 0",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvskew=255",
                "group[0].advskew: 255 is not in 0..=254",
            ),
            (
                "[[group]]\nvhid=1\nvips=['10.0.0.1']\npassword='x'",
                "group[0].interface: is required",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=[]\npassword='x'",
                "group[0].vips: at least one virtual address is required",
            ),
            ("", "group: the configuration defines no group"),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\n[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.2']\npassword='x'",
                "group[1].vhid: vhid 1 is already used on eth0",
            ),
            (
                "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\n[[group]]\ninterface='eth0'\nvhid=2\nvips=['10.0.0.1']\npassword='x'",
                "group[1].vips: 10.0.0.1 is already in another group on eth0",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{text:?}: got {err:?}, want {want:?}"
            );
        }
        let err =
            parse("[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvbse=2")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `advbse`"), "{err}");
    }

    #[test]
    fn password_file_first_line() {
        let dir = std::env::temp_dir().join(format!("vipd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("pw");
        std::fs::write(&p, "secret\nignored\n").unwrap();
        let text = format!(
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100']\npassword_file='{}'",
            p.display()
        );
        let c = parse(&text).unwrap();
        let expect = Key::new(b"secret");
        let adv = carp::Advert::signed(1, 1, 0, 0, 1, &[Ipv4Addr::new(10, 0, 0, 100)], &expect);
        assert!(
            adv.verify(&[Ipv4Addr::new(10, 0, 0, 100)], &c.groups[0].key)
                .is_ok()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const BASE: &str =
        "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100/24']\npassword='x'\n";

    fn err(extra: &str) -> String {
        parse(&format!("{BASE}{extra}")).unwrap_err().to_string()
    }

    #[test]
    fn srcip_must_be_this_hosts_unicast_address() {
        for (ip, what) in [
            ("0.0.0.0", "the unspecified address"),
            ("255.255.255.255", "the broadcast address"),
            ("224.0.0.18", "a multicast address"),
            ("239.1.2.3", "a multicast address"),
            ("127.0.0.1", "a loopback address"),
            ("127.5.5.5", "a loopback address"),
            ("10.0.0.100", "one of the group's virtual addresses"),
        ] {
            assert_eq!(
                err(&format!("srcip='{ip}'")),
                format!("group[0].srcip: {ip} is {what}; give this host's own unicast address")
            );
        }
        let c = parse(&format!("{BASE}srcip='10.0.0.1'")).unwrap();
        assert_eq!(c.groups[0].srcip, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn every_timeout_and_interval_is_above_zero_and_at_most_a_day() {
        for key in ["garp_interval_ms", "script_timeout_ms"] {
            assert_eq!(
                err(&format!("{key}=0")),
                format!("group[0].{key}: 0 must be above 0 (milliseconds)")
            );
            assert_eq!(
                err(&format!("{key}=86400001")),
                format!("group[0].{key}: 86400001 is above 86400000 (one day, in milliseconds)")
            );
            parse(&format!("{BASE}{key}=1")).unwrap();
        }
        assert_eq!(
            err("garp_refresh_ms=0"),
            "group[0].garp_refresh_ms: 0 is below 10 (milliseconds)"
        );
        assert_eq!(
            err("garp_refresh_ms=9"),
            "group[0].garp_refresh_ms: 9 is below 10 (milliseconds)"
        );
        assert!(err("garp_refresh_ms=9223372036854775807").contains("is above 86400000"));
        let c = parse(&format!("{BASE}garp_refresh_ms=10")).unwrap();
        assert_eq!(c.groups[0].garp_refresh, Some(Duration::from_millis(10)));
        assert_eq!(c.groups[0].script_timeout, Duration::from_secs(10));
    }

    /// A directory of mode 0755 under the temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("vipd-cfg-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            chmod(&dir, 0o755);
            Scratch(dir)
        }

        fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            chmod(&p, mode);
            p
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn scripts_others_could_change_are_refused_by_default() {
        let s = Scratch::new("scripts");
        let up = s.file("up.sh", "#!/bin/sh\n", 0o755);
        let c = parse(&format!("{BASE}upscript='{}'", up.display())).unwrap();
        assert_eq!(c.groups[0].upscript.as_deref(), Some(up.as_path()));
        assert!(c.groups[0].script_user.is_none(), "root by default");
        let down = s.file("down.sh", "#!/bin/sh\n", 0o777);
        let e = err(&format!("downscript='{}'", down.display()));
        assert!(
            e.starts_with(&format!(
                "group[0].downscript: {} is writable by group or others (mode 777); a script \
                 and every directory above it must be changeable only by root",
                down.display()
            )),
            "{e}"
        );
        // The check can be turned off.
        parse(&format!(
            "{BASE}downscript='{}'\nscript_security=false",
            down.display()
        ))
        .unwrap();
        // Missing scripts stay an error either way.
        for security in ["true", "false"] {
            let e = err(&format!(
                "upscript='{}/nope.sh'\nscript_security={security}",
                s.0.display()
            ));
            assert!(e.ends_with("nope.sh does not exist"), "{e}");
        }
    }

    #[test]
    fn script_user_is_resolved_when_the_configuration_is_read() {
        let c = parse(&format!("{BASE}script_user='root'")).unwrap();
        let u = c.groups[0].script_user.as_ref().unwrap();
        assert_eq!((u.name.as_str(), u.uid, u.gid), ("root", 0, 0));
        assert_eq!(
            err("script_user='no-such-user-vipd'"),
            "group[0].script_user: no such user: \"no-such-user-vipd\""
        );
        // A script owned by the script user is accepted, by anyone else refused.
        if let Ok(nobody) = ScriptUser::lookup("nobody") {
            let s = Scratch::new("owner");
            let up = s.file("up.sh", "#!/bin/sh\n", 0o755);
            std::os::unix::fs::chown(&up, Some(nobody.uid), None).unwrap();
            parse(&format!(
                "{BASE}upscript='{}'\nscript_user='nobody'",
                up.display()
            ))
            .unwrap();
            let e = err(&format!("upscript='{}'", up.display()));
            assert!(
                e.contains(&format!(
                    "{} is owned by uid {}, not by root;",
                    up.display(),
                    nobody.uid
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn passwords_others_can_read_are_warned_about() {
        let s = Scratch::new("secrets");
        let pw = s.file("pw", "secret\n", 0o644);
        let toml = format!(
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100']\npassword_file='{}'\n",
            pw.display()
        );
        let c = parse(&toml).unwrap();
        assert_eq!(
            c.warnings,
            [format!(
                "password file {} is readable by group or others (mode 644); chmod 600 it",
                pw.display()
            )]
        );
        chmod(&pw, 0o600);
        assert!(parse(&toml).unwrap().warnings.is_empty());
        // A configuration file is read with Config::load: warned about when it holds a
        // password itself and others can read it.
        let with_password = s.file("a.toml", BASE, 0o644);
        let w = Config::load(&with_password).unwrap().warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(&format!(
                "{} holds a password and is readable",
                with_password.display()
            )),
            "{w:?}"
        );
        chmod(&with_password, 0o640);
        assert_eq!(Config::load(&with_password).unwrap().warnings.len(), 1);
        chmod(&with_password, 0o600);
        assert!(Config::load(&with_password).unwrap().warnings.is_empty());
        let without = s.file("b.toml", &toml, 0o644);
        assert!(Config::load(&without).unwrap().warnings.is_empty());
    }

    #[test]
    fn facilities_are_ucarps() {
        assert_eq!(
            syslog_facility("daemon").unwrap() as u8,
            syslog::Facility::LOG_DAEMON as u8
        );
        assert!(
            syslog_facility("nope")
                .unwrap_err()
                .to_string()
                .starts_with("facility: unknown syslog facility \"nope\"")
        );
    }

    /// A group tracking `track`, then `trackers`.
    fn with_trackers(track: &str, trackers: &str) -> Result<Config, ConfigError> {
        parse(&format!("{BASE}track = [{track}]\n{trackers}"))
    }

    fn tracker_err(track: &str, trackers: &str) -> String {
        with_trackers(track, trackers).unwrap_err().to_string()
    }

    const TCP: &str = "[[tracker]]\nname='db'\ntype='tcp'\naddress='127.0.0.1:5432'\n";

    #[test]
    fn trackers_are_defaulted_and_shared_by_name() {
        let text = format!(
            "{BASE}track = [{{ tracker = 'db' }}, {{ tracker = 'nic', weight = 20 }}]\n\
             demote_mode = 'demote'\n\
             [[group]]\ninterface='eth0'\nvhid=2\nvips=['10.0.0.101']\npassword='x'\n\
             track = [{{ tracker = 'db', weight = 254 }}]\n\
             {TCP}\
             [[tracker]]\nname='nic'\ntype='interface'\ninterface='eth1'\n\
             [[tracker]]\nname='pid'\ntype='process'\npidfile='/run/x.pid'\nfall=3\n\
             [[tracker]]\nname='h'\ntype='http'\naddress='[::1]:8080'\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.groups[0].demote_mode, DemoteMode::Demote);
        assert_eq!(c.groups[1].demote_mode, DemoteMode::Advskew);
        assert_eq!(c.groups[1].track[0].weight, Some(254));
        assert_eq!(
            c.trackers[0],
            TrackerConfig::new(
                "db",
                TrackerKind::Tcp {
                    address: "127.0.0.1:5432".parse().unwrap(),
                    interval: Duration::from_secs(1),
                    timeout: Duration::from_secs(1),
                }
            )
        );
        assert_eq!(
            c.trackers[1].kind,
            TrackerKind::Interface {
                interface: "eth1".into()
            }
        );
        assert_eq!(c.trackers[2].fall, 3);
        let TrackerKind::Http {
            host,
            path,
            expect_status,
            ..
        } = &c.trackers[3].kind
        else {
            panic!("{:?}", c.trackers[3]);
        };
        assert_eq!(
            (host.as_str(), path.as_str(), *expect_status),
            ("[::1]:8080", "/", 200)
        );
        assert_eq!(
            c.warnings,
            [
                "tracker \"pid\" is used by no group",
                "tracker \"h\" is used by no group"
            ]
        );
        // ucarp's flags have no trackers to name.
        let raw = RawGroup {
            interface: Some("eth0".into()),
            vhid: Some(1),
            vips: vec!["10.0.0.1".into()],
            password: Some("x".into()),
            track: vec![TrackRef {
                tracker: "db".into(),
                weight: None,
            }],
            ..RawGroup::default()
        };
        assert_eq!(
            Config::from_raw(vec![raw], |_| "--".into())
                .unwrap_err()
                .to_string(),
            "--track: no tracker is named \"db\""
        );
    }

    #[test]
    fn tracker_errors_name_the_field() {
        let t = |body: &str| format!("[[tracker]]\nname='t'\n{body}\n");
        let cases: Vec<(String, &str)> = vec![
            (t("type='tcp'"), "tracker[0].address: is required"),
            (
                "[[tracker]]\ntype='tcp'\naddress='127.0.0.1:1'".into(),
                "tracker[0].name: is required",
            ),
            (
                "[[tracker]]\nname='a b'\ntype='tcp'\naddress='127.0.0.1:1'".into(),
                "tracker[0].name: \"a b\" must be 1 to 64 letters, digits, '-', '_' or '.'",
            ),
            (
                t(""),
                "tracker[0].type: is required (interface, process, tcp, http, script or file)",
            ),
            (
                t("type='htp'"),
                "tracker[0].type: unknown tracker type \"htp\" (interface, process, tcp, http, script or file)",
            ),
            (
                t("type='tcp'\naddress='localhost:80'"),
                "tracker[0].address: \"localhost:80\" is not an address with a port (127.0.0.1:80, [::1]:80)",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:0'"),
                "tracker[0].address: \"127.0.0.1:0\" has port 0",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=5"),
                "tracker[0].interval_ms: 5 is below 10 (milliseconds)",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=100\ntimeout_ms=200"),
                "tracker[0].timeout_ms: 200 is above interval_ms (100)",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\ntimeout_ms=0"),
                "tracker[0].timeout_ms: 0 must be above 0 (milliseconds)",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=86400001"),
                "tracker[0].interval_ms: 86400001 is above 86400000 (one day, in milliseconds)",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\nrise=0"),
                "tracker[0].rise: 0 must be at least 1",
            ),
            (
                t("type='tcp'\naddress='127.0.0.1:1'\npath='/x'"),
                "tracker[0].path: is not a key of tcp trackers",
            ),
            (
                t("type='interface'\ninterface='eth1'\ninterval_ms=100"),
                "tracker[0].interval_ms: is not a key of interface trackers",
            ),
            (
                t("type='interface'\ninterface='eth1'\nfall=2"),
                "tracker[0].fall: interface trackers report each change as it happens; rise and fall (other than 1) are for process, tcp, http and script trackers",
            ),
            (t("type='interface'"), "tracker[0].interface: is required"),
            (
                t("type='interface'\ninterface='a-very-long-name0'"),
                "tracker[0].interface: \"a-very-long-name0\" is not an interface name",
            ),
            (
                t("type='process'"),
                "tracker[0].process_name: give one of process_name, process_cmdline or pidfile",
            ),
            (
                t("type='process'\nprocess_name='a'\npidfile='/run/a.pid'"),
                "tracker[0].pidfile: give only one of process_name, process_cmdline or pidfile (process_name is given too)",
            ),
            (
                t("type='process'\nprocess_name='/usr/sbin/nginx'"),
                "tracker[0].process_name: \"/usr/sbin/nginx\" is not a process name (/proc/PID/comm, no path)",
            ),
            (
                t("type='process'\nprocess_cmdline=''"),
                "tracker[0].process_cmdline: an empty command line would match every process",
            ),
            (
                t("type='http'\naddress='127.0.0.1:80'\npath='health'"),
                "tracker[0].path: \"health\" must start with /",
            ),
            (
                t("type='http'\naddress='127.0.0.1:80'\npath='/a b'"),
                "tracker[0].path: \"/a b\" must be non-empty, without spaces or control characters",
            ),
            (
                t("type='http'\naddress='127.0.0.1:80'\nhost=\"a\\r\\nX: y\""),
                "tracker[0].host: \"a\\r\\nX: y\" must be non-empty, without spaces or control characters",
            ),
            (
                t("type='http'\naddress='127.0.0.1:80'\nexpect_status=99"),
                "tracker[0].expect_status: 99 is not in 100..=599",
            ),
            (t("type='script'"), "tracker[0].command: is required"),
            (
                t("type='script'\ncommand='check.sh'"),
                "tracker[0].command: check.sh is not an absolute path",
            ),
            (
                t("type='script'\ncommand='/nonexistent-vipd/check.sh'"),
                "tracker[0].command: /nonexistent-vipd/check.sh does not exist",
            ),
            (
                t("type='script'\ncommand='/bin/sh'\nscript_user='no-such-user-vipd'"),
                "tracker[0].script_user: no such user: \"no-such-user-vipd\"",
            ),
            (
                t("type='script'\ncommand='/bin/sh'\nargs=['a', \"b\\u0000\"]"),
                "tracker[0].args: argument 1 holds a NUL byte",
            ),
            (t("type='file'"), "tracker[0].path: is required"),
            (
                t("type='file'\npath='/nonexistent-vipd/w'"),
                "tracker[0].path: directory /nonexistent-vipd does not exist",
            ),
            (
                t("type='file'\npath='/tmp/w'\nexpect_status=200"),
                "tracker[0].expect_status: is not a key of file trackers",
            ),
            (
                format!("{TCP}{TCP}"),
                "tracker[1].name: \"db\" is already the name of tracker[0]",
            ),
        ];
        for (trackers, want) in cases {
            let e = tracker_err("", &trackers);
            assert_eq!(e, want, "{trackers:?}");
        }
    }

    #[test]
    fn track_references_are_checked() {
        assert_eq!(
            tracker_err("{ tracker = 'dbx' }", TCP),
            "group[0].track: no tracker is named \"dbx\""
        );
        assert_eq!(
            tracker_err("{ tracker = 'db' }, { tracker = 'db', weight = 3 }", TCP),
            "group[0].track: tracker \"db\" is listed twice"
        );
        for w in [0, 255] {
            assert_eq!(
                tracker_err(&format!("{{ tracker = 'db', weight = {w} }}"), TCP),
                format!(
                    "group[0].track: weight {w} of tracker \"db\" is not in 1..=254 (leave the \
                     weight out to go to FAULT while the tracker is down)"
                )
            );
        }
        let e = tracker_err("{ tracker = 'db', wieght = 3 }", TCP);
        assert!(e.contains("unknown field `wieght`"), "{e}");
        let e = err("demote_mode = 'skew'");
        assert!(e.contains("unknown variant `skew`"), "{e}");
        with_trackers("{ tracker = 'db', weight = 1 }", TCP).unwrap();
    }

    #[test]
    fn notify_and_tracker_scripts_are_checked_as_scripts_are() {
        let s = Scratch::new("notify");
        let ok = s.file("notify.sh", "#!/bin/sh\n", 0o755);
        let open = s.file("open.sh", "#!/bin/sh\n", 0o777);
        let c = parse(&format!("{BASE}notify='{}'", ok.display())).unwrap();
        assert_eq!(c.groups[0].notify.as_deref(), Some(ok.as_path()));
        assert!(parse(BASE).unwrap().groups[0].notify.is_none());
        let e = err(&format!("notify='{}'", open.display()));
        assert!(
            e.starts_with(&format!(
                "group[0].notify: {} is writable by group or others (mode 777); a script",
                open.display()
            )),
            "{e}"
        );
        parse(&format!(
            "{BASE}notify='{}'\nscript_security=false",
            open.display()
        ))
        .unwrap();
        assert!(err(&format!("notify='{}/nope.sh'", s.0.display())).ends_with("does not exist"));
        let script = |path: &Path, extra: &str| {
            format!(
                "[[tracker]]\nname='chk'\ntype='script'\ncommand='{}'\nargs=['-q']\n\
                 interval_ms=200\ntimeout_ms=150\n{extra}",
                path.display()
            )
        };
        let c = with_trackers("{ tracker = 'chk' }", &script(&ok, "script_user='root'")).unwrap();
        assert_eq!(
            c.trackers[0].kind,
            TrackerKind::Script {
                command: ok.clone(),
                args: vec!["-q".into()],
                interval: Duration::from_millis(200),
                timeout: Duration::from_millis(150),
                user: Some(ScriptUser::lookup("root").unwrap()),
            }
        );
        let e = tracker_err("{ tracker = 'chk' }", &script(&open, ""));
        assert!(
            e.starts_with(&format!(
                "tracker[0].command: {} is writable by group or others",
                open.display()
            )),
            "{e}"
        );
        with_trackers(
            "{ tracker = 'chk' }",
            &script(&open, "script_security=false"),
        )
        .unwrap();
    }

    #[test]
    fn file_trackers_warn_when_others_could_set_the_value() {
        let s = Scratch::new("weight");
        let file = |dir: &Path| {
            format!(
                "[[tracker]]\nname='w'\ntype='file'\npath='{}/weight'\n",
                dir.display()
            )
        };
        let c = with_trackers("{ tracker = 'w', weight = 10 }", &file(&s.0)).unwrap();
        assert_eq!(
            c.trackers[0].kind,
            TrackerKind::File {
                path: s.0.join("weight")
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        chmod(&s.0, 0o1777);
        let c = with_trackers("{ tracker = 'w' }", &file(&s.0)).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with("tracker \"w\": others than root can write"));
        chmod(&s.0, 0o755);
        assert!(
            tracker_err(
                "",
                &format!(
                    "[[tracker]]\nname='w'\ntype='file'\npath='{}/'\n",
                    s.0.display()
                )
            )
            .starts_with("tracker[0].path:")
        );
    }
}
