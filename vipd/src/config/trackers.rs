//! Tracker rules: a `[[tracker]]` as written, validated once into [`TrackerConfig`].
use super::*;

/// The shortest probe interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

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

/// The tracker types, as `type` spells them.
pub(super) const TRACKER_TYPES: &str = "interface, process, tcp, http, script or file";

/// The probe interval of tcp, http and script trackers when none is given (their
/// timeout defaults to their interval).
pub(super) const DEFAULT_INTERVAL_MS: u64 = 1000;

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
            let min = MIN_INTERVAL.as_millis() as u64;
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

/// One tracker, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    pub name: String,
    pub kind: TrackerKind,
    /// Consecutive successes before a down tracker is reported up (>= 1).
    pub rise: u32,
    /// Consecutive failures before an up tracker is reported down (>= 1).
    pub fall: u32,
}

impl TrackerConfig {
    /// A tracker with rise and fall 1.
    pub fn new(name: impl Into<String>, kind: TrackerKind) -> TrackerConfig {
        TrackerConfig {
            name: name.into(),
            kind,
            rise: 1,
            fall: 1,
        }
    }

    /// What [`spawn`] refuses, in words.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a tracker needs a name".into());
        }
        if self.rise == 0 || self.fall == 0 {
            return Err("rise and fall must be at least 1".into());
        }
        if !self.kind.counts_observations() && (self.rise != 1 || self.fall != 1) {
            return Err(format!(
                "{} trackers report each change as it happens: rise and fall must be 1",
                self.kind.type_name()
            ));
        }
        if let Some((interval, timeout)) = self.kind.timing() {
            if interval < MIN_INTERVAL {
                return Err(format!(
                    "interval {} ms is below {} ms",
                    interval.as_millis(),
                    MIN_INTERVAL.as_millis()
                ));
            }
            if timeout.is_zero() || timeout > interval {
                return Err(format!(
                    "timeout {} ms must be above 0 and at most the interval ({} ms)",
                    timeout.as_millis(),
                    interval.as_millis()
                ));
            }
        }
        match &self.kind {
            TrackerKind::Interface { interface } => {
                if interface.is_empty() || interface.len() > 15 || interface.contains('/') {
                    return Err(format!("{interface:?} is not an interface name"));
                }
            }
            TrackerKind::Process {
                name,
                cmdline,
                pidfile,
            } => {
                let given = [name.is_some(), cmdline.is_some(), pidfile.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err("give exactly one of a name, a command line or a pidfile".into());
                }
                if name.as_deref() == Some("") || cmdline.as_deref() == Some("") {
                    return Err("an empty process name or command line matches anything".into());
                }
            }
            TrackerKind::Http {
                host,
                path,
                expect_status,
                ..
            } => {
                check_request_part("host", host)?;
                check_request_part("path", path)?;
                if !path.starts_with('/') {
                    return Err(format!("path {path:?} must start with /"));
                }
                if !(100..=599).contains(expect_status) {
                    return Err(format!("status {expect_status} is not in 100..=599"));
                }
            }
            TrackerKind::File { path } => {
                if path.file_name().is_none() || path.as_os_str().as_encoded_bytes().ends_with(b"/")
                {
                    return Err(format!("{} does not name a file", path.display()));
                }
            }
            TrackerKind::Tcp { .. } | TrackerKind::Script { .. } => {}
        }
        Ok(())
    }
}

/// An HTTP host or path must be one token: no spaces, no control characters.
pub(super) fn check_request_part(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} {value:?} must be non-empty, without spaces or control characters"
        ));
    }
    Ok(())
}

/// What a tracker watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerKind {
    /// Healthy while the interface is up and running (IFF_UP and IFF_RUNNING), from
    /// rtnetlink notifications. A missing interface is down.
    Interface { interface: String },
    /// Healthy while a matching process lives. Exactly one of: `name`, the process name
    /// (`/proc/PID/comm`, which the kernel cuts to 15 bytes: a longer name matches on its
    /// first 15); `cmdline`, a substring of the command line (arguments joined by spaces);
    /// `pidfile`, a file holding the pid (read again at each scan; a stale pid taken since
    /// by another live process counts as alive, as with any pidfile).
    Process {
        name: Option<String>,
        cmdline: Option<String>,
        pidfile: Option<PathBuf>,
    },
    /// Healthy when a TCP connection to `address` completes within `timeout`.
    Tcp {
        address: SocketAddr,
        interval: Duration,
        timeout: Duration,
    },
    /// Healthy when `GET path` answers `expect_status` within `timeout`.
    Http {
        address: SocketAddr,
        host: String,
        path: String,
        expect_status: u16,
        interval: Duration,
        timeout: Duration,
    },
    /// Healthy when the command exits 0 within `timeout`. Its stdin, stdout and stderr
    /// are /dev/null.
    Script {
        command: PathBuf,
        args: Vec<String>,
        interval: Duration,
        timeout: Duration,
        /// Run as this user and its groups; `None`: as vipd's user.
        user: Option<ScriptUser>,
    },
    /// The integer in the file, reported as [`TrackerEvent::Value`].
    File { path: PathBuf },
}

impl TrackerKind {
    /// The name of the kind, as the configuration spells its `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            TrackerKind::Interface { .. } => "interface",
            TrackerKind::Process { .. } => "process",
            TrackerKind::Tcp { .. } => "tcp",
            TrackerKind::Http { .. } => "http",
            TrackerKind::Script { .. } => "script",
            TrackerKind::File { .. } => "file",
        }
    }

    /// Whether rise and fall count observations (otherwise every change is reported).
    pub fn counts_observations(&self) -> bool {
        !matches!(
            self,
            TrackerKind::Interface { .. } | TrackerKind::File { .. }
        )
    }

    /// Interval and timeout of a probing tracker.
    pub fn timing(&self) -> Option<(Duration, Duration)> {
        match self {
            TrackerKind::Tcp {
                interval, timeout, ..
            }
            | TrackerKind::Http {
                interval, timeout, ..
            }
            | TrackerKind::Script {
                interval, timeout, ..
            } => Some((*interval, *timeout)),
            _ => None,
        }
    }
}
