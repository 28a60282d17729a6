//! Trackers: what a group's health depends on besides its own interface. Each one watches
//! one thing and tells the daemon when its verdict changes, through one channel of
//! [`TrackerEvent`]s (see [`spawn`]).
//!
//! - interface: rtnetlink link notifications (up and running = healthy); never polled.
//! - process: one scan of /proc, then a pidfd per matching process (readable = exited).
//! - tcp: a connect() every interval, in-process.
//! - http: a GET every interval over a TCP stream, in-process; the status line decides.
//! - script: a command every interval, in a process group of its own, killed with it at
//!   its timeout.
//! - file: an integer read from a file, read again when inotify reports a change.
//!
//! Probing trackers (tcp, http, script) and process trackers report a change only after
//! `rise` consecutive successes or `fall` consecutive failures ([`Hysteresis`]); the first
//! verdict is reported as soon as it is known. Interface and file trackers report each
//! change as it happens, so their rise and fall are 1.
//!
//! A process tracker notices an exit without polling. While no matching process is being
//! watched (the tracker is down, or not yet confirmed up), it scans /proc again every
//! [`PROCESS_RESCAN`]; each scan is one observation, so `fall = 3` tolerates a restart
//! that takes less than two scans. (The proc connector would report new processes without
//! scanning, but needs a netlink socket with CAP_NET_ADMIN and reports every fork and exec
//! of the host; a scan of /proc at this pace while a service is down costs less.)
//!
//! Every tracker runs on a task of its own, and every probe is bounded by its own
//! timeout, so no probe delays another or the daemon. Trackers end when the receiver
//! returned by [`spawn`] is dropped; a script still running is killed with its process
//! group.
use std::ffi::OsStr;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::addr::{AddrError, LinkEvent, LinkWatch, Netlink};
use crate::scripts::{self, ScriptUser};

/// The shortest probe interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How often a process tracker scans /proc while no matching process is watched.
pub const PROCESS_RESCAN: Duration = Duration::from_millis(200);
/// Matching processes a process tracker waits on at most; when they have all exited,
/// /proc is scanned again at once, so more matches are still seen.
pub const MAX_WATCHED: usize = 64;
/// The most of a tracked file that is read; a longer file is garbage.
pub const MAX_FILE_BYTES: usize = 4096;
/// The longest HTTP status line read.
pub const MAX_STATUS_LINE: usize = 1024;
/// How often a file tracker tries to watch its directory again once it is gone.
const FILE_RETRY: Duration = Duration::from_secs(1);

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
fn check_request_part(what: &str, value: &str) -> Result<(), String> {
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

/// What the daemon hears from its trackers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerEvent {
    /// A tracker's verdict changed (or is known for the first time).
    Health { name: String, healthy: bool },
    /// A file tracker read a new value (the first one, a changed one, or one after the
    /// file could not be read). A file that cannot be read or does not hold an integer is
    /// reported as `Health { healthy: false }`; the next `Value` means it is readable again.
    Value { name: String, value: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("tracker {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("tracker {0} is defined twice")]
    Duplicate(String),
    #[error("interface trackers: {0}")]
    Netlink(#[from] AddrError),
    #[error("tracker {name}: {what}: {source}")]
    Io {
        name: String,
        what: String,
        source: std::io::Error,
    },
}

/// Rise and fall: a verdict changes only after enough consecutive observations agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    pub rise: u32,
    pub fall: u32,
    /// The verdict reported; `None` before the first observation.
    state: Option<bool>,
    /// Consecutive observations contradicting `state`.
    streak: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            state: None,
            streak: 0,
        }
    }

    /// Takes one observation; returns the new verdict when it changes. The first
    /// observation is the first verdict.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        match self.state {
            None => {
                self.state = Some(ok);
                self.streak = 0;
                Some(ok)
            }
            Some(s) if s == ok => {
                self.streak = 0;
                None
            }
            Some(_) => {
                self.streak += 1;
                let needed = if ok { self.rise } else { self.fall };
                if self.streak >= needed {
                    self.state = Some(ok);
                    self.streak = 0;
                    Some(ok)
                } else {
                    None
                }
            }
        }
    }

    /// The verdict reported so far.
    pub fn state(&self) -> Option<bool> {
        self.state
    }
}

/// Starts every tracker on the current runtime. Set-up that can fail (inotify watches,
/// netlink sockets) is done before any task starts; the trackers end when the receiver is
/// dropped.
pub fn spawn(configs: Vec<TrackerConfig>) -> Result<mpsc::Receiver<TrackerEvent>, TrackerError> {
    let mut names = std::collections::HashSet::new();
    for c in &configs {
        c.check().map_err(|reason| TrackerError::Invalid {
            name: c.name.clone(),
            reason,
        })?;
        if !names.insert(c.name.as_str()) {
            return Err(TrackerError::Duplicate(c.name.clone()));
        }
    }
    let (tx, rx) = mpsc::channel(64.max(configs.len() * 4));
    let mut tasks: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    let mut interfaces = Vec::new();
    for c in configs {
        let out = Out {
            name: c.name,
            tx: tx.clone(),
        };
        let hysteresis = Hysteresis::new(c.rise, c.fall);
        match c.kind {
            TrackerKind::Interface { interface } => interfaces.push(Iface {
                out,
                hysteresis,
                ifname: interface,
                index: None,
            }),
            TrackerKind::Process {
                name,
                cmdline,
                pidfile,
            } => {
                let m = match (name, cmdline, pidfile) {
                    (Some(n), _, _) => Match::Name(n),
                    (_, Some(c), _) => Match::Cmdline(c),
                    (_, _, Some(p)) => Match::Pidfile(p),
                    _ => unreachable!("checked above"),
                };
                tasks.push(Box::pin(run_process(out, hysteresis, m)));
            }
            TrackerKind::Tcp {
                address,
                interval,
                timeout,
            } => tasks.push(Box::pin(run_probes(out, hysteresis, interval, move || {
                tcp_probe(address, timeout)
            }))),
            TrackerKind::Http {
                address,
                host,
                path,
                expect_status,
                interval,
                timeout,
            } => {
                let request = http_request(&host, &path);
                tasks.push(Box::pin(run_probes(out, hysteresis, interval, move || {
                    http_probe(address, request.clone(), expect_status, timeout)
                })));
            }
            TrackerKind::Script {
                command,
                args,
                interval,
                timeout,
                user,
            } => tasks.push(Box::pin(run_probes(out, hysteresis, interval, move || {
                script_probe(command.clone(), args.clone(), user.clone(), timeout)
            }))),
            TrackerKind::File { path } => {
                let watch = FileWatch::new(&path).map_err(|source| TrackerError::Io {
                    name: out.name.clone(),
                    what: format!("cannot watch {}", watched_dir(&path).display()),
                    source,
                })?;
                tasks.push(Box::pin(run_file(out, path, watch)));
            }
        }
    }
    if !interfaces.is_empty() {
        let watch = LinkWatch::start()?;
        let netlink = Netlink::new()?;
        tasks.push(Box::pin(run_interfaces(interfaces, watch, netlink)));
    }
    for task in tasks {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tx.closed() => {}
                _ = task => {}
            }
        });
    }
    Ok(rx)
}

/// Where one tracker's events go.
struct Out {
    name: String,
    tx: mpsc::Sender<TrackerEvent>,
}

impl Out {
    async fn health(&self, healthy: bool) {
        let _ = self
            .tx
            .send(TrackerEvent::Health {
                name: self.name.clone(),
                healthy,
            })
            .await;
    }

    async fn value(&self, value: i64) {
        let _ = self
            .tx
            .send(TrackerEvent::Value {
                name: self.name.clone(),
                value,
            })
            .await;
    }

    /// Feeds one observation through `h`; reports and logs a change of verdict.
    async fn observe(&self, h: &mut Hysteresis, result: &Result<(), String>) {
        if let Err(why) = result {
            tracing::debug!(tracker = %self.name, reason = %why, "tracker check failed");
        }
        if let Some(healthy) = h.observe(result.is_ok()) {
            match result {
                Ok(()) => tracing::info!(tracker = %self.name, "tracker up"),
                Err(why) => tracing::warn!(tracker = %self.name, reason = %why, "tracker down"),
            }
            self.health(healthy).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Probing trackers: tcp, http, script.

/// Runs `probe` every `interval` (the first at once), each bounded by its own timeout,
/// which is at most the interval: probes of one tracker never overlap.
async fn run_probes<F, P>(out: Out, mut h: Hysteresis, interval: Duration, mut probe: P)
where
    P: FnMut() -> F + Send,
    F: Future<Output = Result<(), String>> + Send,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = probe().await;
        out.observe(&mut h, &result).await;
    }
}

/// A TCP connection to `address` within `timeout`. The connection is closed with a reset,
/// so that frequent probes leave no TIME_WAIT sockets behind.
async fn tcp_probe(address: SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => Err(format!(
            "no connection to {address} within {} ms",
            timeout.as_millis()
        )),
        Ok(Err(e)) => Err(format!("connecting to {address}: {e}")),
        Ok(Ok(stream)) => {
            let _ = stream.set_zero_linger();
            Ok(())
        }
    }
}

/// The request an HTTP tracker sends.
pub fn http_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipd\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    )
}

async fn http_probe(
    address: SocketAddr,
    request: String,
    expect: u16,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, http_status(address, &request)).await {
        Err(_) => Err(format!(
            "no status line from {address} within {} ms",
            timeout.as_millis()
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(status)) if status == expect => Ok(()),
        Ok(Ok(status)) => Err(format!("{address} answered {status}, not {expect}")),
    }
}

/// Sends `request` and reads the status code of the answer; the rest is not read.
async fn http_status(address: SocketAddr, request: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let _ = stream.set_zero_linger();
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending to {address}: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(line) = status_line(&buf) {
            return parse_status_line(line);
        }
        if buf.len() >= MAX_STATUS_LINE {
            return Err(format!(
                "no status line in the first {MAX_STATUS_LINE} bytes"
            ));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading from {address}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "{address} closed the connection before a status line"
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The first line of `buf` (without its line end), once it is complete.
pub fn status_line(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.iter().position(|b| *b == b'\n')?;
    let line = &buf[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`; the reason may be
/// missing).
pub fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned();
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or_else(|| format!("not an HTTP/1.x status line: {:?}", shown()))?;
    let rest = match rest {
        [minor, b' ', rest @ ..] if minor.is_ascii_digit() => rest,
        _ => return Err(format!("not an HTTP/1.x status line: {:?}", shown())),
    };
    let code = match rest {
        [a, b, c] | [a, b, c, b' ', ..] => [*a, *b, *c],
        _ => return Err(format!("no status code in {:?}", shown())),
    };
    if !code.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&code[0]) {
        return Err(format!("no status code in {:?}", shown()));
    }
    Ok(code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

/// Kills a process group when dropped while armed: a script whose probe is abandoned (the
/// tracker ends) goes with everything it started.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) of the process group the probe created; its leader has not
            // been waited for, so the id is still that group's.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the command with stdin, stdout and stderr on /dev/null, in a process group of its
/// own, as `user`; healthy when it exits 0 within `timeout`. On timeout the whole group is
/// killed.
async fn script_probe(
    command: PathBuf,
    args: Vec<String>,
    user: Option<ScriptUser>,
    timeout: Duration,
) -> Result<(), String> {
    use std::process::Stdio;
    let mut cmd = tokio::process::Command::new(&command);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(user) = user {
        let (uid, gid, groups) = (user.uid, user.gid, user.groups);
        // SAFETY: the closure runs in the child between fork and exec and makes only
        // async-signal-safe system calls, on memory it owns.
        unsafe {
            cmd.pre_exec(move || scripts::drop_privileges(uid, gid, &groups));
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", command.display()))?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            group.0 = None;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{} {status}", command.display()))
            }
        }
        Ok(Err(e)) => Err(format!("waiting for {}: {e}", command.display())),
        Err(_) => {
            group.kill();
            let _ = child.wait().await;
            Err(format!(
                "{} ran past {} ms and was killed with its process group",
                command.display(),
                timeout.as_millis()
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Interface trackers.

struct Iface {
    out: Out,
    hysteresis: Hysteresis,
    ifname: String,
    /// The interface's index while it exists.
    index: Option<u32>,
}

impl Iface {
    /// Asks the kernel for the interface by name: its index and whether it runs.
    async fn refresh(&mut self, netlink: &Netlink) {
        let result = match netlink.link(&self.ifname).await {
            Ok(info) => {
                self.index = Some(info.index);
                if info.running {
                    Ok(())
                } else {
                    Err(format!("{} is not up and running", self.ifname))
                }
            }
            Err(AddrError::NoInterface(_)) => {
                self.index = None;
                Err(format!("no interface {}", self.ifname))
            }
            Err(e) => {
                tracing::warn!(tracker = %self.out.name, error = %e, "cannot read the interface");
                return;
            }
        };
        self.out.observe(&mut self.hysteresis, &result).await;
    }
}

/// One task for every interface tracker: a notification about a tracked interface (or
/// about any interface while a tracked one is missing: it may have been created or
/// renamed) makes the tracker read its interface again by name.
async fn run_interfaces(mut list: Vec<Iface>, mut watch: LinkWatch, netlink: Netlink) {
    for i in &mut list {
        i.refresh(&netlink).await;
    }
    while let Some(event) = watch.next().await {
        let index = match event {
            LinkEvent::Changed { index, .. } | LinkEvent::Removed { index } => index,
        };
        for i in &mut list {
            if i.index.is_none_or(|mine| mine == index) {
                i.refresh(&netlink).await;
            }
        }
    }
    tracing::error!("link notifications stopped: interface trackers report down");
    for i in &mut list {
        if i.hysteresis.state() != Some(false) {
            i.out.health(false).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Process trackers.

/// How a process tracker recognises its processes.
#[derive(Clone, Debug)]
enum Match {
    Name(String),
    Cmdline(String),
    Pidfile(PathBuf),
}

impl Match {
    fn describe(&self) -> String {
        match self {
            Match::Name(n) => format!("no process named {n:?}"),
            Match::Cmdline(c) => format!("no process with {c:?} in its command line"),
            Match::Pidfile(p) => format!("no live process has the pid in {}", p.display()),
        }
    }
}

/// The name and state letter of `/proc/PID/stat`.
pub fn parse_stat(stat: &str) -> Option<(&str, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some((comm, state))
}

/// Whether the process name `comm` (cut by the kernel to 15 bytes) is `name`.
pub fn comm_matches(comm: &str, name: &str) -> bool {
    const TASK_COMM: usize = 15;
    comm == name
        || (name.len() > TASK_COMM && name.as_bytes().get(..TASK_COMM) == Some(comm.as_bytes()))
}

/// Whether process `pid` lives (a zombie does not) and matches.
fn process_matches(pid: i32, m: &Match) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((comm, state)) = parse_stat(&stat) else {
        return false;
    };
    if matches!(state, 'Z' | 'X' | 'x') {
        return false;
    }
    match m {
        Match::Name(name) => comm_matches(comm, name),
        Match::Cmdline(needle) => std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                let text = String::from_utf8_lossy(&raw).replace('\0', " ");
                text.trim_end().contains(needle.as_str())
            })
            .unwrap_or(false),
        Match::Pidfile(_) => true,
    }
}

/// The pid a pidfile holds.
pub fn parse_pidfile(text: &str) -> Option<i32> {
    text.split_whitespace()
        .next()?
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
}

/// The pids of the live processes that match, vipd's own left out.
fn scan(m: &Match) -> Vec<i32> {
    let me = std::process::id() as i32;
    match m {
        Match::Pidfile(path) => std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_pidfile(&t))
            .filter(|pid| process_matches(*pid, m))
            .into_iter()
            .collect(),
        _ => {
            let Ok(dir) = std::fs::read_dir("/proc") else {
                return Vec::new();
            };
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| *pid != me && process_matches(*pid, m))
                .collect()
        }
    }
}

/// Registers a descriptor this process owns for readiness to read.
fn readable<T: AsRawFd>(owner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: `owner` owns its descriptor (an OwnedFd, or an inotify instance holding
    // one), keeps it open and returns the same one for as long as the AsyncFd holds it.
    unsafe { AsyncFd::register_with_interest(owner, Interest::READABLE) }
        .map_err(std::io::Error::from)
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Pidfds of the matching processes (at most [`MAX_WATCHED`]). Each process is checked
/// again once its pidfd is open, so a pid reused between the scan and the open is not
/// taken for the process that was found.
fn watch_matches(m: &Match) -> Vec<AsyncFd<OwnedFd>> {
    let mut fds = Vec::new();
    for pid in scan(m) {
        if fds.len() >= MAX_WATCHED {
            break;
        }
        let Ok(fd) = pidfd_open(pid) else { continue };
        if !process_matches(pid, m) {
            continue;
        }
        match readable(fd) {
            Ok(afd) => fds.push(afd),
            Err(e) => tracing::warn!(pid, error = %e, "cannot wait on a process"),
        }
    }
    fds
}

/// Scans, then waits on the matching processes while the tracker is up; scans again when
/// they have all exited, and every [`PROCESS_RESCAN`] while none is watched.
async fn run_process(out: Out, mut h: Hysteresis, m: Match) {
    loop {
        let mut fds = watch_matches(&m);
        let result = if fds.is_empty() {
            Err(m.describe())
        } else {
            Ok(())
        };
        out.observe(&mut h, &result).await;
        if result.is_ok() && h.state() == Some(true) {
            while !fds.is_empty() {
                let (_, i, _) =
                    futures::future::select_all(fds.iter().map(|f| Box::pin(f.readable()))).await;
                fds.swap_remove(i);
            }
            continue;
        }
        drop(fds);
        tokio::time::sleep(PROCESS_RESCAN).await;
    }
}

// ---------------------------------------------------------------------------------------
// File trackers.

/// The integer a tracked file holds: the whole file, surrounding white space ignored.
pub fn parse_value(raw: &[u8]) -> Result<i64, String> {
    if raw.len() > MAX_FILE_BYTES {
        return Err(format!("longer than {MAX_FILE_BYTES} bytes"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| "not text".to_owned())?;
    let t = text.trim();
    if t.is_empty() {
        return Err("empty".into());
    }
    t.parse::<i64>().map_err(|_| {
        let shown: String = t.chars().take(32).collect();
        format!("{shown:?} is not an integer")
    })
}

/// Reads the file without blocking on what is not a regular file (a FIFO, a device).
fn read_value(path: &Path) -> Result<i64, String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let md = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !md.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut raw = Vec::new();
    file.by_ref()
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    parse_value(&raw).map_err(|e| format!("{}: {e}", path.display()))
}

/// The directory inotify watches for a file tracker.
fn watched_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// What in the directory makes the file be read again: a writer closing it, a file
/// renamed into or out of place, its removal. Creation alone is not: the file may still
/// be empty; its writer's close follows.
fn dir_events() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify watch on a file's directory.
struct FileWatch {
    fd: AsyncFd<InotifyFd>,
    dir: PathBuf,
    wd: Option<WatchDescriptor>,
}

impl FileWatch {
    fn new(path: &Path) -> std::io::Result<FileWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let dir = watched_dir(path);
        let wd = inotify.add_watch(&dir, dir_events())?;
        Ok(FileWatch {
            fd: readable(InotifyFd(inotify))?,
            dir,
            wd: Some(wd),
        })
    }

    fn rewatch(&mut self) -> Result<(), String> {
        let wd = self
            .fd
            .get_ref()
            .0
            .add_watch(&self.dir, dir_events())
            .map_err(|e| format!("cannot watch {}: {e}", self.dir.display()))?;
        self.wd = Some(wd);
        Ok(())
    }

    /// Waits for events; `true` when the file must be read again.
    async fn changed(&mut self, name: &OsStr) -> std::io::Result<bool> {
        let events = loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from)) {
                Ok(result) => break result?,
                Err(_would_block) => continue,
            }
        };
        let mut reread = false;
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) || ev.name.as_deref() == Some(name) {
                reread = true;
            }
            let gone = AddWatchFlags::IN_IGNORED
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF
                | AddWatchFlags::IN_UNMOUNT;
            if ev.mask.intersects(gone) && Some(ev.wd) == self.wd {
                // The directory went away (or moved): the path must be watched anew.
                if let Some(wd) = self.wd.take() {
                    let _ = self.fd.get_ref().0.rm_watch(wd);
                }
                reread = true;
            }
        }
        Ok(reread)
    }
}

/// What a file tracker last reported, and how often the file could not be read.
struct FileState {
    last: Option<Result<i64, String>>,
    failures: u64,
}

impl FileState {
    async fn report(&mut self, out: &Out, read: Result<i64, String>) {
        match &read {
            Ok(v) => {
                if self.last.as_ref().is_none_or(|l| l.as_ref() != Ok(v)) {
                    if matches!(self.last, Some(Err(_))) {
                        tracing::info!(tracker = %out.name, value = v,
                            "tracked file readable again");
                    }
                    out.value(*v).await;
                }
            }
            Err(e) => {
                self.failures += 1;
                let was = self.last.as_ref().and_then(|l| l.as_ref().err());
                if was != Some(e) {
                    tracing::warn!(tracker = %out.name, error = %e, failures = self.failures,
                        "tracked file unreadable");
                }
                if !matches!(self.last, Some(Err(_))) {
                    out.health(false).await;
                }
            }
        }
        self.last = Some(read);
    }
}

async fn run_file(out: Out, path: PathBuf, mut watch: FileWatch) {
    let Some(name) = path.file_name().map(OsStr::to_owned) else {
        return;
    };
    let mut state = FileState {
        last: None,
        failures: 0,
    };
    state.report(&out, read_value(&path)).await;
    loop {
        if watch.wd.is_none() {
            match watch.rewatch() {
                Ok(()) => state.report(&out, read_value(&path)).await,
                Err(e) => {
                    state.report(&out, Err(e)).await;
                    tokio::time::sleep(FILE_RETRY).await;
                    continue;
                }
            }
        }
        match watch.changed(&name).await {
            Ok(true) if watch.wd.is_some() => state.report(&out, read_value(&path)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(tracker = %out.name, error = %e,
                    "inotify failed: the tracker stops");
                state.report(&out, Err(format!("inotify: {e}"))).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    #[test]
    fn the_first_verdict_is_reported_at_once() {
        for first in [true, false] {
            let mut h = Hysteresis::new(3, 3);
            assert_eq!(h.state(), None);
            assert_eq!(h.observe(first), Some(first));
            assert_eq!(h.observe(first), None);
            assert_eq!(h.state(), Some(first));
        }
    }

    #[test]
    fn changes_need_rise_or_fall_consecutive_observations() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.observe(true), Some(true));
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false), "fall = 3");
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true), "rise = 2");
        // A success in between starts the count again.
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.state(), Some(false));
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_observation() {
        let mut h = Hysteresis::new(1, 1);
        let seen: Vec<_> = [true, false, false, true, true, false]
            .into_iter()
            .map(|ok| h.observe(ok))
            .collect();
        assert_eq!(
            seen,
            [Some(true), Some(false), None, Some(true), None, Some(false)]
        );
        // Zero counts as one.
        assert_eq!(Hysteresis::new(0, 0), Hysteresis::new(1, 1));
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable"),
            Ok(503)
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204"), Ok(204));
        assert_eq!(parse_status_line(b"HTTP/1.1 404 "), Ok(404));
        for bad in [
            &b""[..],
            b"HTTP/2 200 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 abc OK",
            b"HTTP/1.1 600 Odd",
            b"HTTP/1.1 099 Odd",
            b"HTTP/1.1  200 OK",
            b"SSH-2.0-OpenSSH_9.2",
            b"http/1.1 200 OK",
        ] {
            assert!(
                parse_status_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            status_line(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Some(&b"HTTP/1.1 200 OK"[..])
        );
        assert_eq!(
            status_line(b"HTTP/1.1 200 OK\nServer: x\n"),
            Some(&b"HTTP/1.1 200 OK"[..])
        );
        assert_eq!(status_line(b"HTTP/1.1 200 O"), None);
        assert_eq!(
            http_request("example.org", "/health?x=1"),
            "GET /health?x=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: vipd\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn file_values() {
        assert_eq!(parse_value(b"0"), Ok(0));
        assert_eq!(parse_value(b"5\n"), Ok(5));
        assert_eq!(parse_value(b"  -12 \r\n"), Ok(-12));
        assert_eq!(parse_value(b"+7"), Ok(7));
        assert_eq!(parse_value(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_value(b""), Err("empty".into()));
        assert_eq!(parse_value(b" \n"), Err("empty".into()));
        assert_eq!(parse_value(b"5 6"), Err("\"5 6\" is not an integer".into()));
        assert_eq!(parse_value(b"abc"), Err("\"abc\" is not an integer".into()));
        assert_eq!(parse_value(b"1.5"), Err("\"1.5\" is not an integer".into()));
        assert!(parse_value(b"9223372036854775808").is_err());
        assert_eq!(parse_value(&[0xff, 0xfe]), Err("not text".into()));
        let long = vec![b'1'; MAX_FILE_BYTES + 1];
        assert!(parse_value(&long).unwrap_err().starts_with("longer than"));
    }

    #[test]
    fn proc_parsing() {
        assert_eq!(
            parse_stat("1234 (nginx: worker) S 1 1234 1234 0 -1"),
            Some(("nginx: worker", 'S'))
        );
        assert_eq!(parse_stat("7 (a) b) Z 1"), Some(("a) b", 'Z')));
        assert_eq!(parse_stat("garbage"), None);
        assert!(comm_matches("nginx", "nginx"));
        assert!(!comm_matches("nginx", "ngin"));
        assert!(comm_matches("very-long-daemo", "very-long-daemon-name"));
        assert!(!comm_matches("very-long-daemo", "very-long-daem"));
        assert_eq!(parse_pidfile("1234\n"), Some(1234));
        assert_eq!(parse_pidfile(" 42 extra"), Some(42));
        assert_eq!(parse_pidfile("0"), None);
        assert_eq!(parse_pidfile("-1"), None);
        assert_eq!(parse_pidfile(""), None);
        assert_eq!(parse_pidfile("abc"), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn spawn_refuses_what_cannot_work() {
        {
            let tcp = |name: &str, interval: u64, timeout: u64| {
                TrackerConfig::new(
                    name,
                    TrackerKind::Tcp {
                        address: "127.0.0.1:1".parse().unwrap(),
                        interval: Duration::from_millis(interval),
                        timeout: Duration::from_millis(timeout),
                    },
                )
            };
            let err = |c: Vec<TrackerConfig>| spawn(c).unwrap_err().to_string();
            assert_eq!(
                err(vec![tcp("a", 100, 50), tcp("a", 100, 50)]),
                "tracker a is defined twice"
            );
            assert_eq!(
                err(vec![tcp("a", 5, 5)]),
                "tracker a: interval 5 ms is below 10 ms"
            );
            assert!(err(vec![tcp("a", 100, 200)]).contains("at most the interval"));
            let mut c = tcp("a", 100, 50);
            c.fall = 0;
            assert!(err(vec![c]).contains("at least 1"));
            let mut c = TrackerConfig::new(
                "f",
                TrackerKind::File {
                    path: "/nonexistent-vipd/x".into(),
                },
            );
            assert!(err(vec![c.clone()]).starts_with("tracker f: cannot watch /nonexistent-vipd"));
            c.rise = 2;
            assert!(err(vec![c]).contains("rise and fall must be 1"));
            let p = TrackerConfig::new(
                "p",
                TrackerKind::Process {
                    name: Some("a".into()),
                    cmdline: Some("b".into()),
                    pidfile: None,
                },
            );
            assert!(err(vec![p]).contains("exactly one"));
        }
    }

    /// The next event, or a panic after `within`.
    async fn next(rx: &mut mpsc::Receiver<TrackerEvent>, within: Duration) -> TrackerEvent {
        tokio::time::timeout(within, rx.recv())
            .await
            .expect("no tracker event in time")
            .expect("trackers ended")
    }

    /// No event for `quiet`.
    async fn silent(rx: &mut mpsc::Receiver<TrackerEvent>, quiet: Duration) {
        if let Ok(ev) = tokio::time::timeout(quiet, rx.recv()).await {
            panic!("unexpected event {ev:?}");
        }
    }

    fn health(name: &str, healthy: bool) -> TrackerEvent {
        TrackerEvent::Health {
            name: name.into(),
            healthy,
        }
    }

    fn value(name: &str, value: i64) -> TrackerEvent {
        TrackerEvent::Value {
            name: name.into(),
            value,
        }
    }

    const SOON: Duration = Duration::from_secs(3);

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_tracker_goes_down_after_fall_failed_connects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        let interval = Duration::from_millis(30);
        let mut rx = spawn(vec![TrackerConfig {
            fall: 3,
            ..TrackerConfig::new(
                "tcp",
                TrackerKind::Tcp {
                    address,
                    interval,
                    timeout: Duration::from_millis(20),
                },
            )
        }])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("tcp", true));
        silent(&mut rx, interval * 3).await;
        let closed = Instant::now();
        server.abort();
        let _ = server.await;
        assert_eq!(next(&mut rx, SOON).await, health("tcp", false));
        // Three failed probes, about an interval apart (a tick may come up to 5 ms short
        // of one after a late one): two intervals, less that slack.
        let slack = Duration::from_millis(10);
        assert!(
            closed.elapsed() >= interval * 2 - slack,
            "{:?}",
            closed.elapsed()
        );
    }

    /// An HTTP server answering every request with `status`; the request lines go to the
    /// returned receiver.
    async fn http_server(status: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut chunk = [0u8; 256];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
                    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        (address, rx)
    }

    fn http(name: &str, address: SocketAddr) -> TrackerConfig {
        TrackerConfig::new(
            name,
            TrackerKind::Http {
                address,
                host: "svc.example".into(),
                path: "/health".into(),
                expect_status: 200,
                interval: Duration::from_millis(30),
                timeout: Duration::from_millis(25),
            },
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn http_tracker_follows_the_status() {
        let (ok, mut requests) = http_server("200 OK").await;
        let (failing, _) = http_server("500 Internal Server Error").await;
        let mut rx = spawn(vec![http("ok", ok)]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("ok", true));
        let req = requests.recv().await.unwrap();
        assert!(
            req.starts_with("GET /health HTTP/1.1\r\nHost: svc.example\r\n"),
            "{req}"
        );
        let mut rx = spawn(vec![http("failing", failing)]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("failing", false));
        silent(&mut rx, Duration::from_millis(100)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn http_tracker_times_out_on_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                if let Ok((s, _)) = listener.accept().await {
                    held.push(s);
                }
            }
        });
        let mut rx = spawn(vec![http("mute", address)]).unwrap();
        let started = Instant::now();
        assert_eq!(next(&mut rx, SOON).await, health("mute", false));
        assert!(started.elapsed() >= Duration::from_millis(25));
        server.abort();
        let (up, _) = http_server("200 OK").await;
        let mut rx = spawn(vec![TrackerConfig {
            rise: 2,
            fall: 2,
            ..http("up", up)
        }])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("up", true));
    }

    /// A scratch directory of mode 0755 under the temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("vipd-trackers-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sh(name: &str, script: &str, timeout_ms: u64) -> TrackerConfig {
        TrackerConfig::new(
            name,
            TrackerKind::Script {
                command: "/bin/sh".into(),
                args: vec!["-c".into(), script.into()],
                interval: Duration::from_millis(timeout_ms.max(30)),
                timeout: Duration::from_millis(timeout_ms),
                user: None,
            },
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn script_tracker_follows_the_exit_status() {
        let mut rx = spawn(vec![sh("zero", "exit 0", 1000)]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("zero", true));
        let mut rx = spawn(vec![sh("one", "exit 1", 1000)]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("one", false));
        let mut rx = spawn(vec![TrackerConfig {
            name: "missing".into(),
            kind: TrackerKind::Script {
                command: "/nonexistent-vipd/check".into(),
                args: vec![],
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(50),
                user: None,
            },
            rise: 1,
            fall: 1,
        }])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("missing", false));
        // Runs as the script user.
        let s = Scratch::new("user");
        let out = s.0.join("uid");
        std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        if let Ok(nobody) = ScriptUser::lookup("nobody") {
            let mut c = sh("user", &format!("id -u > {}", out.display()), 1000);
            if let TrackerKind::Script { user, .. } = &mut c.kind {
                *user = Some(nobody.clone());
            }
            let mut rx = spawn(vec![c]).unwrap();
            assert_eq!(next(&mut rx, SOON).await, health("user", true));
            let uid = std::fs::read_to_string(&out).unwrap();
            assert_eq!(uid.trim(), nobody.uid.to_string());
        }
    }

    fn is_gone(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        !alive
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s).map(|(_, st)| st == 'Z'))
                .unwrap_or(true)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hanging_script_is_killed_with_its_process_group_at_its_timeout() {
        let s = Scratch::new("hang");
        let pids = s.0.join("pids");
        let script = format!(
            "sleep 30 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait",
            p = pids.display()
        );
        let started = Instant::now();
        let mut rx = spawn(vec![sh("hang", &script, 200)]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("hang", false));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(rx);
        let text = std::fs::read_to_string(&pids).unwrap();
        let mut gone = false;
        for _ in 0..200 {
            gone = text.split_whitespace().all(|p| is_gone(p.parse().unwrap()));
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "processes of the script survived its timeout: {text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn file_tracker_reports_values_as_the_file_changes() {
        let s = Scratch::new("file");
        let path = s.0.join("weight");
        std::fs::write(&path, "0\n").unwrap();
        let mut rx = spawn(vec![TrackerConfig::new(
            "w",
            TrackerKind::File { path: path.clone() },
        )])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", 0));
        std::fs::write(&path, "5\n").unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", 5));
        // The same value again is no news.
        std::fs::write(&path, "5").unwrap();
        silent(&mut rx, Duration::from_millis(100)).await;
        std::fs::write(&path, "lots").unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("w", false));
        // Renamed into place.
        let tmp = s.0.join("weight.tmp");
        std::fs::write(&tmp, "7").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", 7));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("w", false));
        // Other files of the directory are not read.
        std::fs::write(s.0.join("other"), "1").unwrap();
        silent(&mut rx, Duration::from_millis(100)).await;
        std::fs::write(&path, "-3").unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", -3));
        // A FIFO in its place does not block the tracker.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("w", false));
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let tmp = s.0.join("weight.tmp");
        std::fs::write(&tmp, "2").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", 2));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn file_tracker_starts_down_on_a_missing_file() {
        let s = Scratch::new("missing");
        let path = s.0.join("weight");
        let mut rx = spawn(vec![TrackerConfig::new(
            "w",
            TrackerKind::File { path: path.clone() },
        )])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("w", false));
        std::fs::write(&path, "1").unwrap();
        assert_eq!(next(&mut rx, SOON).await, value("w", 1));
    }

    fn sleeper(seconds: &str) -> std::process::Child {
        std::process::Command::new("sleep")
            .arg(seconds)
            .spawn()
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn process_tracker_sees_an_exit_at_once_and_a_return_soon() {
        let s = Scratch::new("proc");
        let pidfile = s.0.join("sleep.pid");
        let mut child = sleeper("60");
        std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
        let mut rx = spawn(vec![TrackerConfig::new(
            "p",
            TrackerKind::Process {
                name: None,
                cmdline: None,
                pidfile: Some(pidfile.clone()),
            },
        )])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("p", true));
        silent(&mut rx, Duration::from_millis(300)).await;
        // Killed and not yet reaped: a zombie is not a live process.
        child.kill().unwrap();
        let killed = Instant::now();
        assert_eq!(next(&mut rx, SOON).await, health("p", false));
        assert!(
            killed.elapsed() < Duration::from_millis(150),
            "{:?}",
            killed.elapsed()
        );
        child.wait().unwrap();
        let mut again = sleeper("60");
        std::fs::write(&pidfile, format!("{}\n", again.id())).unwrap();
        assert_eq!(next(&mut rx, PROCESS_RESCAN * 5).await, health("p", true));
        again.kill().unwrap();
        again.wait().unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("p", false));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn process_tracker_by_command_line_and_name_with_fall() {
        let unique = format!("60.{}", std::process::id());
        let mut child = sleeper(&unique);
        // Until it has exec'd, the child still has the test's command line.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        for _ in 0..300 {
            if std::fs::read(&cmdline).is_ok_and(|c| c.ends_with(format!("{unique}\0").as_bytes()))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut rx = spawn(vec![
            TrackerConfig {
                fall: 2,
                ..TrackerConfig::new(
                    "cmdline",
                    TrackerKind::Process {
                        name: None,
                        cmdline: Some(format!("sleep {unique}")),
                        pidfile: None,
                    },
                )
            },
            TrackerConfig::new(
                "name",
                TrackerKind::Process {
                    name: Some("no-such-process-vipd".into()),
                    cmdline: None,
                    pidfile: None,
                },
            ),
        ])
        .unwrap();
        let mut first = vec![next(&mut rx, SOON).await, next(&mut rx, SOON).await];
        first.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(first, [health("cmdline", true), health("name", false)]);
        child.kill().unwrap();
        child.wait().unwrap();
        let killed = Instant::now();
        // fall = 2: the exit and one scan later.
        assert_eq!(next(&mut rx, SOON).await, health("cmdline", false));
        let took = killed.elapsed();
        assert!(
            took >= PROCESS_RESCAN / 2 && took < PROCESS_RESCAN * 3,
            "{took:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn interface_tracker_reads_the_link_state() {
        let mut rx = spawn(vec![
            TrackerConfig::new(
                "lo",
                TrackerKind::Interface {
                    interface: "lo".into(),
                },
            ),
            TrackerConfig::new(
                "none",
                TrackerKind::Interface {
                    interface: "vipdnone0".into(),
                },
            ),
        ])
        .unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("lo", true));
        assert_eq!(next(&mut rx, SOON).await, health("none", false));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_running_script_is_killed_when_the_receiver_is_dropped() {
        let s = Scratch::new("drop");
        let pids = s.0.join("pids");
        let script = format!(
            "sleep 30 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait",
            p = pids.display()
        );
        let rx = spawn(vec![sh("long", &script, 10_000)]).unwrap();
        let mut text = String::new();
        for _ in 0..300 {
            if let Ok(t) = std::fs::read_to_string(&pids) {
                text = t;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!text.is_empty(), "the script did not start");
        drop(rx);
        let mut gone = false;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            gone = text.split_whitespace().all(|p| is_gone(p.parse().unwrap()));
            if gone {
                break;
            }
        }
        assert!(gone, "the script outlived its tracker: {text}");
    }
}
