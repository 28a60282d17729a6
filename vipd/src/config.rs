//! Configuration: ucarp's command-line flags (one group) or a TOML file (any number of
//! groups), both validated into the same [`Config`]. Every error names the field at fault.
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::carp::{self, Key};
use crate::election::Params;

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
#[derive(Clone, Debug)]
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
    /// Ignore the interface's link state (`-S`).
    pub ignore_ifstate: bool,
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub groups: Vec<GroupConfig>,
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
    pub script_timeout_ms: Option<u64>,
    #[serde(default)]
    pub ignore_ifstate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "group")]
    groups: Vec<RawGroup>,
}

/// Reads the password file as ucarp does: its first line.
fn read_password_file(field: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let text =
        std::fs::read(path).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
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

/// `value` as a byte, or an error naming `field` and its valid `range`.
fn byte(field: &str, value: u32, range: &str) -> Result<u8, ConfigError> {
    u8::try_from(value).map_err(|_| invalid(field, format!("{value} is not in {range}")))
}

impl RawGroup {
    /// Validates one group; `at` prefixes field names (e.g. `group[2].`).
    pub fn validate(self, at: &str) -> Result<GroupConfig, ConfigError> {
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
            Some(s) => Some(
                s.parse::<Ipv4Addr>()
                    .map_err(|_| invalid(f("srcip"), format!("{s:?} is not an IPv4 address")))?,
            ),
        };
        let password = match (self.password, self.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    f("password"),
                    "give a password or a password file, not both",
                ));
            }
            (Some(p), None) if !p.is_empty() => p.into_bytes(),
            (None, Some(path)) => read_password_file(&f("password_file"), &path)?,
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
        for (name, script) in [
            ("upscript", &self.upscript),
            ("downscript", &self.downscript),
        ] {
            if let Some(s) = script
                && !s.exists()
            {
                return Err(invalid(f(name), format!("{} does not exist", s.display())));
            }
        }
        let garp_count = self.garp_count.unwrap_or(3);
        if !(1..=100).contains(&garp_count) {
            return Err(invalid(
                f("garp_count"),
                format!("{garp_count} is not in 1..=100"),
            ));
        }
        let garp_interval = Duration::from_millis(self.garp_interval_ms.unwrap_or(200));
        let garp_refresh = match self.garp_refresh_ms {
            None => None,
            Some(ms) if ms >= 10 => Some(Duration::from_millis(ms)),
            Some(ms) => {
                return Err(invalid(
                    f("garp_refresh_ms"),
                    format!("{ms} is below 10 (ms between announcements while MASTER)"),
                ));
            }
        };
        let script_timeout = Duration::from_millis(self.script_timeout_ms.unwrap_or(10_000));
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
            ignore_ifstate: self.ignore_ifstate,
        })
    }
}

impl Config {
    /// Validates a set of groups: each on its own, then no vhid twice on one interface and
    /// no VIP in two groups of one interface.
    pub fn from_raw(
        groups: Vec<RawGroup>,
        prefix: impl Fn(usize) -> String,
    ) -> Result<Config, ConfigError> {
        if groups.is_empty() {
            return Err(invalid("group", "the configuration defines no group"));
        }
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.validate(&prefix(i)))
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
        }
        Ok(Config { groups })
    }

    /// Parses and validates a TOML configuration.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned()
                + &e.span()
                    .map(|s| format!(" (at line {})", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default(),
        })?;
        Config::from_raw(raw.groups, |i| format!("group[{i}]."))
    }

    /// Reads, parses and validates a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(path, &text)
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
}
