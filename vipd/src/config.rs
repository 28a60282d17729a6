//! Configuration: ucarp's command-line flags (one group) or a TOML file (any number of
//! groups), both validated into the same [`Config`]. Every error names the field at fault.
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::carp::{self, Key};
use crate::election::Params;
use crate::scripts::{self, ScriptUser};

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
    /// Run the scripts as this user; `None`: as root, as ucarp does.
    pub script_user: Option<ScriptUser>,
    /// Ignore the interface's link state (`-S`).
    pub ignore_ifstate: bool,
    /// What the HMAC of advertisements covers (`authenticate`).
    pub coverage: carp::Coverage,
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub groups: Vec<GroupConfig>,
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
    pub script_timeout_ms: Option<u64>,
    /// "carp" (default, as ucarp) or "all" (vipd nodes only: also timing, demote, sender).
    pub authenticate: Option<carp::Coverage>,
    /// User the scripts run as (default root).
    pub script_user: Option<String>,
    /// Refuse scripts that anyone but root or the script user could change (default true).
    pub script_security: Option<bool>,
    #[serde(default)]
    pub ignore_ifstate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "group")]
    groups: Vec<RawGroup>,
}

/// The mode of `path` when group or others can read it.
fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Reads the password file as ucarp does: its first line.
fn read_password_file(
    field: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, ConfigError> {
    let text =
        std::fs::read(path).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
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
        ] {
            let Some(s) = script else { continue };
            if !s.exists() {
                return Err(invalid(f(name), format!("{} does not exist", s.display())));
            }
            if self.script_security.unwrap_or(true) {
                scripts::check_script(s, script_user.as_ref()).map_err(|e| {
                    let who = script_user
                        .as_ref()
                        .map(|u| format!(" or {}", u.name))
                        .unwrap_or_default();
                    invalid(
                        f(name),
                        format!(
                            "{e}; a script and every directory above it must be changeable \
                             only by root{who}"
                        ),
                    )
                })?;
            }
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
        let mut warnings = Vec::new();
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
        }
        Ok(Config { groups, warnings })
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
            Config::from_raw(raw.groups, |i| format!("group[{i}]."))?,
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
}
