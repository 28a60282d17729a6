//! Service failure: a TCP server bound to the VIP runs on both nodes, the master's is
//! killed while a client opens a new connection to the VIP every few ms, and the figure
//! is the time from the kill until a connection is served by the peer. vipd watches the
//! service with its process tracker and with its tcp tracker, keepalived with
//! `vrrp_track_process` and with a `vrrp_script`; each puts the group in FAULT.
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vipd_tests::{Lab, SUBNET_PREFIX, VIP, node_addr};

use super::stats::median;
use super::systems::{self, Speed, StatusExt, Sys, now_unix_us, vipd_status, write_script};

/// The service's TCP port on the VIP.
pub const PORT: u16 = 7000;
/// How often the client opens a connection.
pub const CONNECT_EVERY: Duration = Duration::from_millis(10);
/// How long a connection may take to be accepted and answered.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
/// How long after the kill the client keeps trying.
pub const WINDOW: Duration = Duration::from_secs(3);
/// vipd's tcp tracker interval (its shortest) and timeout.
pub const TCP_INTERVAL_MS: u64 = 10;
/// Advertisement timing of every run: the fastest each system supports.
pub const SPEED: Speed = Speed::Fastest;

/// A system and the way it watches the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    VipdProcess,
    VipdTcp,
    KeepalivedProcess,
    KeepalivedScript,
}

impl Tracking {
    pub const ALL: [Tracking; 4] = [
        Tracking::VipdProcess,
        Tracking::VipdTcp,
        Tracking::KeepalivedProcess,
        Tracking::KeepalivedScript,
    ];

    pub fn sys(self) -> Sys {
        match self {
            Tracking::VipdProcess | Tracking::VipdTcp => Sys::Vipd,
            Tracking::KeepalivedProcess | Tracking::KeepalivedScript => Sys::Keepalived,
        }
    }

    /// The tracker in a few words.
    pub fn short(self) -> &'static str {
        match self {
            Tracking::VipdProcess => "process tracker",
            Tracking::VipdTcp => "tcp tracker",
            Tracking::KeepalivedProcess => "`vrrp_track_process`",
            Tracking::KeepalivedScript => "`vrrp_script`",
        }
    }

    /// The tracker as the configuration the run writes sets it up.
    pub fn name(self) -> String {
        match self {
            Tracking::VipdProcess => {
                "process tracker (`type = \"process\"`, `process_name`, pidfd), fall 1, FAULT"
                    .into()
            }
            Tracking::VipdTcp => format!(
                "tcp tracker (`type = \"tcp\"` to the VIP's port, `interval_ms = \
                 {TCP_INTERVAL_MS}`, `timeout_ms = {TCP_INTERVAL_MS}`), fall 1, FAULT"
            ),
            Tracking::KeepalivedProcess => {
                "`vrrp_track_process` (`process` name, quorum 1, weight 0: FAULT)".into()
            }
            Tracking::KeepalivedScript => "`vrrp_script` (`kill -0 PID`, `interval 1`, \
                 its shortest: whole seconds; fall 1, weight 0: FAULT)"
                .into(),
        }
    }
}

/// The process name (`/proc/PID/comm`, at most 15 bytes) of node `i`'s service: unique on
/// the machine, since process trackers look at every process.
fn service_comm(i: usize) -> String {
    format!("bsvc{}-{}", std::process::id(), i + 1)
}

/// What the server of node `i` answers: its node's name.
fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The service: names itself, listens on the VIP (IP_FREEBIND: a keepalived backup does
/// not hold it yet), says it is ready, and answers every connection with the node's name.
const SERVER: &str = r#"import ctypes, socket, sys
comm, addr, port, node = sys.argv[1:5]
ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IP, 15, 1)
s.bind((addr, int(port)))
s.listen(256)
print("ready", flush=True)
reply = (node + "\n").encode()
while True:
    c, _ = s.accept()
    try:
        c.sendall(reply)
    except OSError:
        pass
    c.close()
"#;

/// The service on one node; killed and reaped when dropped.
struct Service {
    child: Child,
}

impl Service {
    fn start(lab: &Lab, i: usize) -> Result<Service> {
        let script = lab.dir().join("service.py");
        std::fs::write(&script, SERVER)?;
        let log_path = lab.dir().join(format!("service{}.log", i + 1));
        let log = std::fs::File::create(&log_path)?;
        let child = lab.nodes[i]
            .cmd("python3")
            .arg(&script)
            .args([
                &service_comm(i),
                &VIP.to_string(),
                &PORT.to_string(),
                &node_name(i),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the service")?;
        let service = Service { child };
        let pid = service.child.id();
        let ready = Lab::wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains("ready"))
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == service_comm(i))
        });
        if !ready {
            bail!(
                "the service on node {} did not start: {}",
                i + 1,
                std::fs::read_to_string(&log_path)
                    .unwrap_or_default()
                    .trim()
            );
        }
        Ok(service)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaped at once (a zombie would still pass `kill -0`).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How one connection attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted and answered with this node name.
    Served(String),
    Refused,
    /// Not accepted and answered within [`CONNECT_TIMEOUT`].
    TimedOut,
    /// Another error (errno), or closed without an answer.
    Failed(i32),
}

/// One connection attempt; times since the client's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub start: Duration,
    /// When the connection was established, if it was.
    pub connected: Option<Duration>,
    pub outcome: Outcome,
}

/// A non-blocking connect to `addr`: the socket, or the errno of a connect that failed
/// at once.
fn open(addr: SocketAddrV4) -> Result<OwnedFd, i32> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in for the call.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc == 0 || errno() == libc::EINPROGRESS {
        Ok(fd)
    } else {
        Err(errno())
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The pending error of a socket whose connect finished (0: connected).
fn socket_error(fd: &OwnedFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for SO_ERROR.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 { errno() } else { err }
}

/// What a connected socket says: its first line.
fn read_answer(fd: &OwnedFd) -> Outcome {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    match n {
        n if n > 0 => {
            let text = String::from_utf8_lossy(&buf[..n as usize]);
            Outcome::Served(text.lines().next().unwrap_or("").trim().to_owned())
        }
        0 => Outcome::Failed(0),
        _ => Outcome::Failed(errno()),
    }
}

/// One attempt under way.
struct Pending {
    fd: OwnedFd,
    start: Duration,
    connected: Option<Duration>,
}

/// Opens a connection to `addr` every `every`, each given `timeout`, until `stop` is set;
/// then lets those under way end. Runs in the calling thread's network namespace; times
/// are since `base`.
pub fn connect_loop(
    addr: SocketAddrV4,
    every: Duration,
    timeout: Duration,
    base: Instant,
    stop: &AtomicBool,
) -> Vec<Attempt> {
    let mut done = vec![];
    let mut pending: Vec<Pending> = vec![];
    let mut next = base.elapsed();
    loop {
        let now = base.elapsed();
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && pending.is_empty() {
            break;
        }
        if !stopping && now >= next {
            match open(addr) {
                Ok(fd) => pending.push(Pending {
                    fd,
                    start: now,
                    connected: None,
                }),
                Err(e) => done.push(Attempt {
                    start: now,
                    connected: None,
                    outcome: if e == libc::ECONNREFUSED {
                        Outcome::Refused
                    } else {
                        Outcome::Failed(e)
                    },
                }),
            }
            next += every;
            if next <= now {
                next = now + every;
            }
        }
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|p| libc::pollfd {
                fd: p.fd.as_raw_fd(),
                events: if p.connected.is_some() {
                    libc::POLLIN
                } else {
                    libc::POLLOUT
                },
                revents: 0,
            })
            .collect();
        let wake = pending
            .iter()
            .map(|p| p.start + timeout)
            .chain((!stopping).then_some(next))
            .min()
            .unwrap_or(now);
        let wait = wake.saturating_sub(base.elapsed());
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `fds` and `ts` are valid for the call; no signal mask is changed.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        let now = base.elapsed();
        let mut keep = vec![];
        for (mut p, pfd) in pending.drain(..).zip(&fds) {
            let mut outcome = None;
            if pfd.revents != 0 {
                if p.connected.is_none() {
                    match socket_error(&p.fd) {
                        0 => p.connected = Some(now),
                        libc::ECONNREFUSED => outcome = Some(Outcome::Refused),
                        e => outcome = Some(Outcome::Failed(e)),
                    }
                } else {
                    outcome = Some(read_answer(&p.fd));
                }
            }
            if outcome.is_none() && now >= p.start + timeout {
                outcome = Some(Outcome::TimedOut);
            }
            match outcome {
                Some(outcome) => done.push(Attempt {
                    start: p.start,
                    connected: p.connected,
                    outcome,
                }),
                None => keep.push(p),
            }
        }
        pending = keep;
    }
    done.sort_by_key(|a| a.start);
    done
}

/// What one run saw after the kill.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// vipd only: from the kill to the peer's ownership map write (`vipd status`), ms.
    pub takeover_ms: Option<f64>,
    /// From the kill to the first connection served by the peer being established, ms.
    pub ms: f64,
    /// Attempts started after the kill and before that one that the peer did not serve.
    pub failed: u64,
    /// Attempts in the [`CHECKED_BEFORE`] before the kill that the master did not serve.
    pub failed_before: u64,
    /// How often the client really opened a connection (median spacing), ms.
    pub cadence_ms: f64,
}

/// How long before the kill the client's attempts are checked.
pub const CHECKED_BEFORE: Duration = Duration::from_millis(500);

/// Reads a run's attempts: the master (`master`, the node name its server answers) served
/// the last attempt before the kill at `kill` (those of the [`CHECKED_BEFORE`] before it
/// that it did not serve are counted); after it, the first attempt `peer` served ends the
/// outage.
pub fn recovery(
    attempts: &[Attempt],
    kill: Duration,
    master: &str,
    peer: &str,
) -> Result<Recovery, String> {
    let (before, after): (Vec<&Attempt>, Vec<&Attempt>) =
        attempts.iter().partition(|a| a.start < kill);
    let gaps: Vec<f64> = attempts
        .windows(2)
        .map(|w| w[1].start.saturating_sub(w[0].start).as_secs_f64() * 1e3)
        .collect();
    let cadence_ms = median(&gaps);
    let by_master = |a: &&&Attempt| a.outcome == Outcome::Served(master.to_owned());
    let Some(last) = before.last() else {
        return Err("no connection attempt before the kill".into());
    };
    if !by_master(&last) {
        return Err(format!(
            "the last attempt before the kill was not served by {master}: {:?}",
            last.outcome
        ));
    }
    let failed_before = before
        .iter()
        .filter(|a| a.start + CHECKED_BEFORE >= kill && !by_master(a))
        .count() as u64;
    let served = |a: &&Attempt| a.outcome == Outcome::Served(peer.to_owned());
    let Some(first) = after.iter().position(served) else {
        let refused = after
            .iter()
            .filter(|a| a.outcome == Outcome::Refused)
            .count();
        let timed_out = after
            .iter()
            .filter(|a| a.outcome == Outcome::TimedOut)
            .count();
        return Err(format!(
            "no connection served by {peer} after the kill ({} attempts: {refused} refused, \
             {timed_out} timed out)",
            after.len()
        ));
    };
    let a = after[first];
    let at = a.connected.unwrap_or(a.start);
    Ok(Recovery {
        takeover_ms: None,
        ms: at.saturating_sub(kill).as_secs_f64() * 1e3,
        failed: first as u64,
        failed_before,
        cadence_ms,
    })
}

/// One tracking's runs.
pub struct TrackerRow {
    pub tracking: Tracking,
    pub recovery_ms: Vec<f64>,
    /// vipd only: the takeovers `vipd status` reported, ms after the kill.
    pub takeover_ms: Vec<f64>,
    pub failed: Vec<u64>,
    /// Per run, attempts in the [`CHECKED_BEFORE`] before the kill the master did not serve.
    pub failed_before: Vec<u64>,
    pub cadence_ms: Vec<f64>,
    /// Why runs failed, one entry per failed run.
    pub errors: Vec<String>,
}

impl TrackerRow {
    pub fn runs(&self) -> usize {
        self.recovery_ms.len() + self.errors.len()
    }
}

/// Every tracking, `reps` times each.
pub fn trackers(reps: usize, clock: &Instant) -> Vec<TrackerRow> {
    Tracking::ALL
        .iter()
        .map(|&tracking| {
            let mut row = TrackerRow {
                tracking,
                recovery_ms: vec![],
                takeover_ms: vec![],
                failed: vec![],
                failed_before: vec![],
                cadence_ms: vec![],
                errors: vec![],
            };
            for rep in 0..reps {
                eprintln!(
                    "==> [{:>4}s] service killed: {} {} #{}",
                    clock.elapsed().as_secs(),
                    tracking.sys().name(),
                    tracking.name(),
                    rep + 1
                );
                match service_failover(tracking, kill_after(rep, reps)) {
                    Ok(r) => {
                        eprintln!("    {:.1} ms, {} failed attempts", r.ms, r.failed);
                        row.recovery_ms.push(r.ms);
                        row.takeover_ms.extend(r.takeover_ms);
                        row.failed.push(r.failed);
                        row.failed_before.push(r.failed_before);
                        row.cadence_ms.push(r.cadence_ms);
                    }
                    Err(e) => {
                        eprintln!("    failed: {e:#}");
                        row.errors.push(format!("{e:#}"));
                    }
                }
            }
            row
        })
        .collect()
}

/// How long after the client starts the kill of run `rep` of `reps` comes: 1 s, plus a
/// part of [`KILL_SPREAD`] that spreads the runs evenly over it.
pub fn kill_after(rep: usize, reps: usize) -> Duration {
    KILL_BASE + KILL_SPREAD.mul_f64((rep as f64 + 0.5) / reps.max(1) as f64)
}

/// The shortest time from the client's start to the kill.
pub const KILL_BASE: Duration = Duration::from_secs(1);

/// Over what span the kills of a row's runs are spread: a second (keepalived's script
/// interval) and one client spacing, so that they fall at different points of both.
pub const KILL_SPREAD: Duration = Duration::from_millis(1010);

/// Starts vipd on node `i` with its service tracked as `tracking` says.
fn start_vipd(lab: &mut Lab, i: usize, tracking: Tracking) -> Result<()> {
    let (advbase, advskew) = SPEED.carp(i == 0);
    let tracker = match tracking {
        Tracking::VipdProcess => format!(
            "type = \"process\"\nprocess_name = \"{}\"\n",
            service_comm(i)
        ),
        _ => format!(
            "type = \"tcp\"\naddress = \"{VIP}:{PORT}\"\ninterval_ms = {TCP_INTERVAL_MS}\n\
             timeout_ms = {TCP_INTERVAL_MS}\n"
        ),
    };
    let conf = format!(
        "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [\"{VIP}/{SUBNET_PREFIX}\"]\n\
         srcip = \"{}\"\npassword = \"secret\"\nadvbase = {advbase}\nadvskew = {advskew}\n\
         track = [{{ tracker = \"svc\" }}]\n\n[[tracker]]\nname = \"svc\"\nfall = 1\n{tracker}",
        node_addr(i + 1)
    );
    let path = lab.dir().join(format!("n{}.toml", i + 1));
    std::fs::write(&path, conf)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    lab.start_vipd(i, &["run", "--config", &path.to_string_lossy()])?;
    Ok(())
}

/// Starts keepalived on node `i` with its service tracked as `tracking` says.
fn start_keepalived(
    lab: &mut Lab,
    i: usize,
    tracking: Tracking,
    pid: u32,
) -> Result<systems::Running> {
    let (top, instance) = match tracking {
        Tracking::KeepalivedProcess => (
            format!(
                "vrrp_track_process svc {{\n  process {}\n  quorum 1\n  weight 0\n}}\n",
                service_comm(i)
            ),
            "  track_process {\n    svc\n  }\n",
        ),
        _ => {
            let check = lab.dir().join(format!("check{}.sh", i + 1));
            write_script(&check, &format!("kill -0 {pid}"))?;
            (
                format!(
                    "vrrp_script svc {{\n  script \"{}\"\n  interval 1\n  timeout 1\n  \
                     fall 1\n  rise 1\n  weight 0\n}}\n",
                    check.display()
                ),
                "  track_script {\n    svc\n  }\n",
            )
        }
    };
    systems::start_keepalived(lab, i, SPEED, &top, instance)
}

/// Node `i`'s state as its system shows it: MASTER, BACKUP, FAULT or other.
fn state(lab: &Lab, sys: Sys, i: usize) -> String {
    match sys {
        Sys::Vipd => lab.state(i, 1),
        _ => systems::last_event(&lab.dir().join(format!("events{i}"))).unwrap_or_default(),
    }
}

/// Waits until node `i` is in `want`; fails at once on FAULT.
fn settle(lab: &Lab, sys: Sys, i: usize, want: &str) -> Result<()> {
    let mut seen = String::new();
    Lab::wait_for(Duration::from_secs(10), || {
        seen = state(lab, sys, i);
        seen == want || seen == "FAULT"
    });
    if seen != want {
        bail!(
            "{} on node {} is {} instead of {want}",
            sys.name(),
            i + 1,
            if seen.is_empty() { "silent" } else { &seen }
        );
    }
    Ok(())
}

/// Lines of keepalived's log on node `i` that say why it went to FAULT, each once (a line
/// that another one extends is left out).
fn keepalived_fault_lines(lab: &Lab, i: usize) -> Vec<String> {
    fault_lines(&systems::keepalived_log(lab, i))
}

fn fault_lines(log: &str) -> Vec<String> {
    let lines: Vec<String> = log
        .lines()
        .filter(|l| l.contains("FAULT") || l.contains("Failed") || l.contains("process event"))
        .map(|l| {
            // Drop keepalived's date prefix ("Mon Nov 23 20:17:36 2026: ").
            l.split_once(": ").map_or(l, |(_, rest)| rest).to_owned()
        })
        .collect();
    let mut kept: Vec<String> = vec![];
    for (k, l) in lines.iter().enumerate() {
        let extended = lines
            .iter()
            .enumerate()
            .any(|(j, o)| j != k && o.len() > l.len() && o.starts_with(l.as_str()));
        if !extended && !kept.contains(l) {
            kept.push(l.clone());
        }
    }
    kept
}

/// Whether the kernel's process-events connector takes a listener in namespace `ns`, as
/// keepalived's `vrrp_track_process` subscribes: bind to CN_IDX_PROC and send
/// PROC_CN_MCAST_LISTEN.
fn proc_connector(ns: &str) -> std::io::Result<()> {
    vipd_tests::in_netns(ns, || {
        const NETLINK_CONNECTOR: i32 = 11;
        const CN_IDX_PROC: u32 = 1;
        const PROC_CN_MCAST_LISTEN: u32 = 1;
        const PROC_CN_MCAST_IGNORE: u32 = 2;
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: just created, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = CN_IDX_PROC;
        // SAFETY: `sa` is a valid sockaddr_nl for the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let send = |op: u32| {
            // nlmsghdr (16) + cn_msg (idx, val, seq, ack, len, flags: 20) + op (4).
            let mut m = Vec::with_capacity(40);
            m.extend_from_slice(&40u32.to_ne_bytes());
            m.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&std::process::id().to_ne_bytes());
            for v in [CN_IDX_PROC, 1, 0, 0] {
                m.extend_from_slice(&v.to_ne_bytes());
            }
            m.extend_from_slice(&4u16.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&op.to_ne_bytes());
            // SAFETY: `m` is valid for its length.
            let n = unsafe { libc::send(fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        send(PROC_CN_MCAST_LISTEN)?;
        let _ = send(PROC_CN_MCAST_IGNORE);
        Ok(())
    })
}

/// Starts node `i`'s system with its tracker and waits for it to be `want`.
fn start_node(lab: &mut Lab, tracking: Tracking, i: usize, pid: u32, want: &str) -> Result<()> {
    let sys = tracking.sys();
    match sys {
        Sys::Vipd => start_vipd(lab, i, tracking)?,
        _ => {
            start_keepalived(lab, i, tracking, pid)?;
        }
    }
    let Err(e) = settle(lab, sys, i, want) else {
        return Ok(());
    };
    if sys != Sys::Keepalived {
        return Err(e);
    }
    let mut why = keepalived_fault_lines(lab, i);
    if tracking == Tracking::KeepalivedProcess
        && let Err(c) = proc_connector(&lab.nodes[i].ns)
    {
        why.push(format!(
            "the kernel's process-events connector refused a listener in the node's network \
             namespace ({c})"
        ));
    }
    if why.is_empty() {
        Err(e)
    } else {
        bail!("{e:#}: {}", why.join("; "))
    }
}

fn service_failover(tracking: Tracking, kill_after: Duration) -> Result<Recovery> {
    let sys = tracking.sys();
    let tag = match tracking {
        Tracking::VipdProcess => "tvproc",
        Tracking::VipdTcp => "tvtcp",
        Tracking::KeepalivedProcess => "tkproc",
        Tracking::KeepalivedScript => "tkscript",
    };
    let mut lab = Lab::new(tag, 2)?;
    // Declared after the lab: killed and reaped before the lab goes.
    let mut services = [Service::start(&lab, 0)?, Service::start(&lab, 1)?];
    start_node(&mut lab, tracking, 0, services[0].pid(), "MASTER")?;
    start_node(&mut lab, tracking, 1, services[1].pid(), "BACKUP")?;
    std::thread::sleep(Duration::from_secs(2));

    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (ns, stop) = (lab.client.ns.clone(), stop.clone());
        let addr = SocketAddrV4::new(VIP, PORT);
        std::thread::spawn(move || {
            vipd_tests::in_netns(&ns, move || {
                connect_loop(addr, CONNECT_EVERY, CONNECT_TIMEOUT, base, &stop)
            })
        })
    };
    std::thread::sleep((base + kill_after).saturating_duration_since(Instant::now()));
    let kill = base.elapsed();
    let kill_unix_us = now_unix_us();
    services[0].kill();
    std::thread::sleep(WINDOW);
    stop.store(true, Ordering::Relaxed);
    let attempts = client
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))?;
    let r = recovery(&attempts, kill, &node_name(0), &node_name(1));
    let state_after = state(&lab, sys, 0);
    let takeover_ms = match sys {
        Sys::Vipd => vipd_status(&lab, 1)
            .ok()
            .and_then(|s| s.group(1).and_then(|g| g.last_owned_at_unix_us))
            .filter(|t| *t >= kill_unix_us)
            .map(|t| (t - kill_unix_us) as f64 / 1e3),
        _ => None,
    };
    r.map(|r| Recovery { takeover_ms, ..r }).map_err(|e| {
        anyhow::anyhow!(
            "{e}; node 1 is {} after the kill",
            if state_after.is_empty() {
                "silent"
            } else {
                &state_after
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn served(start: u64, node: &str) -> Attempt {
        Attempt {
            start: ms(start),
            connected: Some(ms(start) + Duration::from_micros(300)),
            outcome: Outcome::Served(node.into()),
        }
    }

    fn failed(start: u64, outcome: Outcome) -> Attempt {
        Attempt {
            start: ms(start),
            connected: None,
            outcome,
        }
    }

    /// Attempts every 10 ms from 0: the master serves until `kill`, `bad` fail after it,
    /// then the peer serves.
    fn run(kill: u64, bad: &[Outcome]) -> Vec<Attempt> {
        let mut v: Vec<Attempt> = (0..kill / 10).map(|k| served(k * 10, "n1")).collect();
        let mut t = (kill / 10) * 10;
        if t < kill {
            t += 10;
        }
        for o in bad {
            v.push(failed(t, o.clone()));
            t += 10;
        }
        for _ in 0..5 {
            v.push(served(t, "n2"));
            t += 10;
        }
        v
    }

    #[test]
    fn recovery_is_the_first_connection_the_peer_serves_after_the_kill() {
        let a = run(
            1005,
            &[Outcome::Refused, Outcome::TimedOut, Outcome::Failed(0)],
        );
        let r = recovery(&a, ms(1005), "n1", "n2").unwrap();
        // Attempts at 1010, 1020, 1030 fail; 1040 connects 0.3 ms later.
        assert!((r.ms - 35.3).abs() < 1e-9, "{r:?}");
        assert_eq!(r.failed, 3);
        assert!((r.cadence_ms - 10.0).abs() < 1e-9);
        assert_eq!(r.failed_before, 0);
        // Earlier failures are counted only within CHECKED_BEFORE of the kill.
        let mut a = run(1000, &[]);
        a[10] = failed(100, Outcome::TimedOut);
        a[60] = failed(600, Outcome::TimedOut);
        a[97] = failed(970, Outcome::Refused);
        let r = recovery(&a, ms(1000), "n1", "n2").unwrap();
        assert_eq!((r.failed, r.failed_before), (0, 2));
        assert_eq!(r.failed, 0);
        assert!((r.ms - 0.3).abs() < 1e-9);
    }

    #[test]
    fn an_answer_from_the_killed_node_is_not_recovery() {
        let mut a = run(500, &[Outcome::Refused]);
        a.insert(51, served(505, "n1"));
        let r = recovery(&a, ms(500), "n1", "n2").unwrap();
        assert_eq!(r.failed, 2);
    }

    #[test]
    fn a_run_without_a_served_master_or_peer_is_an_error() {
        // No attempt before the kill.
        let e = recovery(&run(0, &[]), ms(0), "n1", "n2").unwrap_err();
        assert!(e.contains("no connection attempt before the kill"), "{e}");
        // The master did not serve the last attempt before the kill.
        let mut a = run(500, &[]);
        a[49] = failed(490, Outcome::TimedOut);
        let e = recovery(&a, ms(500), "n1", "n2").unwrap_err();
        assert!(
            e.contains("the last attempt before the kill was not served by n1: TimedOut"),
            "{e}"
        );
        // The peer never served.
        let mut a = run(500, &[Outcome::Refused, Outcome::TimedOut]);
        a.retain(|x| x.outcome != Outcome::Served("n2".into()));
        let e = recovery(&a, ms(500), "n1", "n2").unwrap_err();
        assert!(
            e.contains(
                "no connection served by n2 after the kill (2 attempts: 1 refused, 1 timed out)"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_client_tells_served_from_refused_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let server = std::thread::spawn(move || {
            use std::io::Write as _;
            for _ in 0..3 {
                let (mut c, _) = listener.accept().unwrap();
                c.write_all(b"n7\n").unwrap();
            }
            // Closed: later connections are refused.
        });
        let stop = AtomicBool::new(false);
        let base = Instant::now();
        let attempts = std::thread::scope(|s| {
            let client = s.spawn(|| connect_loop(addr, ms(10), CONNECT_TIMEOUT, base, &stop));
            server.join().unwrap();
            std::thread::sleep(ms(100));
            stop.store(true, Ordering::Relaxed);
            client.join().unwrap()
        });
        assert!(attempts.len() >= 8, "{attempts:?}");
        assert_eq!(
            attempts[..3].iter().map(|a| &a.outcome).collect::<Vec<_>>(),
            [&Outcome::Served("n7".into()); 3]
        );
        assert!(attempts[..3].iter().all(|a| a.connected >= Some(a.start)));
        assert!(attempts.windows(2).all(|w| w[0].start < w[1].start));
        let last = attempts.last().unwrap();
        assert_eq!((last.connected, &last.outcome), (None, &Outcome::Refused));
    }

    #[test]
    fn keepalived_fault_lines_are_given_once_without_their_date() {
        let log = "Mon Nov 23 20:17:36 2026: Starting VRRP child process, pid=4851\n\
                   Mon Nov 23 20:17:36 2026: Failed to set/clear process event listen - errno 111\n\
                   Mon Nov 23 20:17:36 2026: (VI_1) entering FAULT state (tracked process svc quorum not achieved)\n\
                   Mon Nov 23 20:17:36 2026: (VI_1) entering FAULT state\n\
                   Mon Nov 23 20:17:37 2026: (VI_1) entering FAULT state\n";
        assert_eq!(
            fault_lines(log),
            [
                "Failed to set/clear process event listen - errno 111",
                "(VI_1) entering FAULT state (tracked process svc quorum not achieved)"
            ]
        );
    }

    #[test]
    fn kills_are_spread_over_a_second_and_the_client_spacing() {
        let us = Duration::from_micros;
        assert_eq!(kill_after(0, 2), us(1_252_500));
        assert_eq!(kill_after(1, 2), us(1_757_500));
        let five: Vec<Duration> = (0..5).map(|r| kill_after(r, 5)).collect();
        assert_eq!(five, [1101, 1303, 1505, 1707, 1909].map(ms));
        // Each at another point of the client's 10 ms spacing.
        let phases: Vec<u128> = five.iter().map(|d| d.as_millis() % 10).collect();
        assert_eq!(phases, [1, 3, 5, 7, 9]);
    }

    #[test]
    fn service_names_fit_the_kernel_comm() {
        for i in 0..2 {
            assert!(service_comm(i).len() <= 15, "{}", service_comm(i));
        }
        assert_ne!(service_comm(0), service_comm(1));
        for t in Tracking::ALL {
            assert!(!t.name().is_empty());
        }
    }
}
