//! A group's fields, from TOML or ucarp's flags, validated once into [`GroupConfig`].
use super::*;

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
    /// Send advertisements to these addresses instead of the multicast group, and accept
    /// them only from these (keepalived's `unicast_peer`, BSD's `carppeer`).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Accept a unicast peer's advertisements only with TTL 255 (default true); false
    /// allows peers behind a router.
    pub peer_ttl_check: Option<bool>,
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

/// The mode of `path` when group or others can read it.
pub(super) fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Reads the password file as ucarp does: its first line.
/// At most `limit` bytes from the start of a regular file (anything else is an error, so
/// that a FIFO never blocks).
pub(super) fn read_head(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
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

pub(super) fn read_password_file(
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
pub(super) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `value` as a byte, or an error naming `field` and its valid `range`.
pub(super) fn byte(field: &str, value: u32, range: &str) -> Result<u8, ConfigError> {
    u8::try_from(value).map_err(|_| invalid(field, format!("{value} is not in {range}")))
}

/// A duration option in milliseconds: `default` when absent, otherwise in `min..=MAX_MS`.
pub(super) fn millis(
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
        let multicast_given = self.multicast.is_some();
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
        let peers = peers_of(&f("peers"), &self.peers, &vips, srcip)?;
        if !peers.is_empty() && (self.broadcast || multicast_given) {
            return Err(invalid(
                f("peers"),
                "unicast peers replace the multicast group: give peers, or multicast or \
                 broadcast, not both",
            ));
        }
        if !peers.is_empty() && srcip.is_none() {
            return Err(invalid(
                f("srcip"),
                "is required with unicast peers: it is the address they send to and accept \
                 advertisements from",
            ));
        }
        if peers.is_empty() && self.peer_ttl_check.is_some() {
            return Err(invalid(
                f("peer_ttl_check"),
                "applies to unicast peers only; give peers too",
            ));
        }
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
            peers,
            peer_ttl_check: self.peer_ttl_check.unwrap_or(true),
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

/// Checks a unicast group's peers: IPv4 unicast addresses of other nodes, each once.
fn peers_of(
    field: &str,
    peers: &[String],
    vips: &[Vip],
    srcip: Option<Ipv4Addr>,
) -> Result<Vec<Ipv4Addr>, ConfigError> {
    let mut out = Vec::with_capacity(peers.len());
    for p in peers {
        let a: Ipv4Addr = match p.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => a,
            Ok(std::net::IpAddr::V6(a)) => {
                return Err(invalid(
                    field,
                    format!(
                        "{a} is an IPv6 address; the group advertises over IPv4, so its \
                         peers must be IPv4 addresses"
                    ),
                ));
            }
            Err(_) => return Err(invalid(field, format!("{p:?} is not an IP address"))),
        };
        let what = if a.is_unspecified() {
            Some("the unspecified address")
        } else if a.is_broadcast() {
            Some("the broadcast address")
        } else if a.is_multicast() {
            Some("a multicast address (leave peers out to advertise to a group)")
        } else if a.is_loopback() {
            Some("a loopback address")
        } else if vips.iter().any(|v| v.addr == a) {
            Some("one of the group's virtual addresses")
        } else if srcip == Some(a) {
            Some("this node's own source address (srcip)")
        } else if out.contains(&a) {
            Some("listed twice")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(invalid(
                field,
                format!("{a} is {what}; list the other nodes' own addresses"),
            ));
        }
        out.push(a);
    }
    Ok(out)
}

/// How long a new master forwards the previous master's connections, and how long `vipd
/// demote --drain` waits for them, unless configured.
pub const DEFAULT_DRAIN_LIMIT_MS: u64 = 60_000;
/// How long a stop waits for the connections to the VIPs to close, unless configured.
pub const DEFAULT_DRAIN_ON_STOP_MS: u64 = 30_000;

/// Refuses a script that does not exist, or (with `security`) that anyone but root or
/// `user` could change.
pub(super) fn check_script_path(
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
