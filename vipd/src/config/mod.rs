//! Configuration: ucarp's command-line flags (one group) or a TOML file (any number of
//! groups), both validated into the same [`Config`]. Every error names the field at fault.
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ops::scripts::{self, ScriptUser};
use crate::protocol::carp::{self, Key};
use crate::protocol::election::Params;
use group::*;
pub use group::{RawGroup, syslog_facility};
pub use trackers::RawTracker;
pub use trackers::{TrackerConfig, TrackerKind};

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
    /// Unicast peers: advertisements go to each of them instead of `destination` and are
    /// accepted only from them. Empty: multicast (or broadcast).
    pub peers: Vec<Ipv4Addr>,
    /// Whether a unicast peer's advertisements must carry TTL 255.
    pub peer_ttl_check: bool,
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

impl GroupConfig {
    /// Whether the group advertises to unicast peers.
    pub fn unicast(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Where advertisements for this group must be sent to be accepted by a node whose
    /// source address is `local`: the group's destination, or `local` for a unicast group.
    pub fn receive_destination(&self, local: Ipv4Addr) -> Ipv4Addr {
        if self.unicast() {
            local
        } else {
            self.destination
        }
    }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "group")]
    groups: Vec<RawGroup>,
    #[serde(default, rename = "tracker")]
    trackers: Vec<RawTracker>,
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
            if !g.vips.iter().map(|v| v.addr).is_sorted() {
                warnings.push(format!(
                    "{}vips: not in ascending order: vipd signs them in ascending order (as \
                     OpenBSD and FreeBSD carp do) and accepts both forms, but a peer running a \
                     vipd older than that takes this node's advertisements for forgeries; \
                     upgrade every node of the group together, or list the VIPs in ascending \
                     order on every node first",
                    prefix(i)
                ));
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

pub mod cli;
mod group;
#[cfg(test)]
mod tests;
pub(crate) mod trackers;
pub mod ucarp;
