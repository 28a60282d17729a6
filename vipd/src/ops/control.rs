//! The control socket: `vipd status|demote|promote` talk to the running daemon over a unix
//! socket (mode 0600), one JSON request line and one JSON reply line per connection.
//!
//! [`serve`] runs the socket on tasks of its own, so that clients never hold up the
//! daemon's event loop: each connection is read under a deadline and a size cap, peers are
//! checked with `SO_PEERCRED`, and only parsed requests reach the daemon, as [`Pending`]s.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{debug, warn};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "cannot reach vipd at {path}: {source} (is the daemon running in this network namespace?)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another vipd is already listening on {0}")]
    InUse(PathBuf),
    #[error("bad reply from vipd: {0}")]
    BadReply(String),
    #[error("{0}")]
    Refused(String),
}

/// Which groups a demote/promote applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    All,
    Vhid(u8),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Demote {
        target: Target,
        /// Remembered across restarts of vipd until promoted (`vipd demote --persist`).
        #[serde(default)]
        persist: bool,
    },
    Promote {
        target: Target,
    },
    /// Read the configuration file again (as SIGHUP).
    Reload,
    /// Demote, then stay DRAINING until the connections to the VIPs have closed or
    /// `limit_ms` passed (`None`: each group's `drain_limit`). `vipd demote --drain[=LIMIT]`.
    Drain {
        target: Target,
        #[serde(default)]
        limit_ms: Option<u64>,
        /// As for `Demote`.
        #[serde(default)]
        persist: bool,
    },
}

/// One group in `vipd status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupStatus {
    pub interface: String,
    pub vhid: u8,
    pub vips: Vec<String>,
    /// A unicast group's peers; empty for a multicast group.
    #[serde(default)]
    pub peers: Vec<String>,
    pub state: String,
    /// Seconds since the last transition.
    pub since_secs: f64,
    /// Address of the current MASTER, if known (ourselves when MASTER).
    pub master: Option<String>,
    pub advbase: u8,
    pub advskew: u8,
    pub demoted: bool,
    /// Milliseconds since the last valid advertisement from a peer.
    pub last_advert_ms: Option<u64>,
    pub transitions: u64,
    pub adverts_sent: u64,
    /// Longest an advertisement was sent after its due time, in microseconds.
    #[serde(default)]
    pub worst_advert_delay_us: u64,
    pub adverts_received: u64,
    /// Advertisements dropped in user space, by reason.
    pub rejected: Vec<(String, u64)>,
    /// Wall-clock time, in microseconds since the Unix epoch, when this node last took
    /// ownership of the group's VIPs.
    #[serde(default)]
    pub last_owned_at_unix_us: Option<u64>,
    /// How long the ownership map write of that take-over took, in microseconds.
    #[serde(default)]
    pub last_own_flip_us: Option<f64>,
    /// Wall-clock time, in microseconds since the Unix epoch, when the last demote request
    /// was applied to the group.
    #[serde(default)]
    pub last_demote_at_unix_us: Option<u64>,
    /// What the failed trackers add to the group's advskew or demote count.
    #[serde(default)]
    pub demotion: u8,
    /// The trackers the group depends on that are failing now.
    #[serde(default)]
    pub failing: Vec<String>,
    /// Set while the group drains (`state` is then "DRAINING"): after a demotion with
    /// `--drain` or at a stop, until its connections to the VIPs have closed or its limit
    /// passed.
    #[serde(default)]
    pub draining: Option<DrainStatus>,
    /// Set while this node, MASTER after a graceful take-over, forwards the TCP segments of
    /// connections it has no socket for to the previous master.
    #[serde(default)]
    pub forwarding: Option<ForwardStatus>,
}

/// A draining group in `vipd status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainStatus {
    /// Open TCP connections with a local address among the group's VIPs, at the last
    /// count (every 100 ms); `None` before the first.
    pub connections: Option<u32>,
    /// Seconds until the drain ends whatever is left.
    pub remaining_secs: f64,
}

/// A forwarding group in `vipd status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForwardStatus {
    /// The previous master, to which connections this node has no socket for go.
    pub to: String,
    /// Its MAC, taken from its advertisements.
    pub mac: Option<String>,
    /// Seconds until forwarding stops.
    pub remaining_secs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// The version of this schema: fields are only ever added within a version.
    #[serde(default = "schema_version")]
    pub schema: u32,
    pub pid: u32,
    pub groups: Vec<GroupStatus>,
    /// XDP/TC per-reason counters, summed over CPUs.
    pub xdp: Vec<(String, u64)>,
    /// Advertisements the ring buffer delivered for no configured group (left-over map
    /// entries of an earlier configuration).
    pub unknown_group: u64,
    /// Control connections refused, by reason.
    #[serde(default)]
    pub control: ControlStats,
    /// The interfaces vipd runs on and how its ingress program is attached to each.
    #[serde(default)]
    pub interfaces: Vec<InterfaceStatus>,
    /// Every tracker: its last verdict and when it came.
    #[serde(default)]
    pub trackers: Vec<TrackerStatus>,
    /// What became of the TCP segments for VIPs this node forwards (after a graceful
    /// take-over), summed over CPUs since the programs were loaded: (name, packets);
    /// `forwarded` went to a previous master.
    #[serde(default)]
    pub forwarding: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Status(Status),
    Ok {
        changed: Vec<u8>,
    },
    /// A reload applied: what changed.
    Reloaded {
        summary: String,
    },
    Error {
        message: String,
    },
}

/// Default control socket: one per network namespace.
pub fn default_socket() -> PathBuf {
    PathBuf::from(format!(
        "/run/vipd/netns-{}.sock",
        crate::kernel::dataplane::netns_id()
    ))
}

/// Binds the control socket with mode 0600, replacing a stale one but never a live one.
pub async fn listen(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    // Create the socket with no group/other bits from the start.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    listener.map_err(io)
}

/// Bounds the control server puts on its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a client may take, from being accepted, to send its whole request line.
    pub read_timeout: Duration,
    /// Longest writing the reply may take (a client that does not read it).
    pub write_timeout: Duration,
    /// Largest request line accepted, newline included, in bytes.
    pub max_request: usize,
    /// Connections served at once; more are answered with an error and closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(2),
            max_request: 64 * 1024,
            max_connections: 16,
        }
    }
}

/// A parsed request waiting for the daemon's answer. Dropping `reply` unanswered sends the
/// client an error.
#[derive(Debug)]
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// The version of `vipd status --json`'s schema.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// One tracker in `vipd status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerStatus {
    pub name: String,
    /// `None` until its first verdict.
    pub healthy: Option<bool>,
    /// The last value of a file tracker.
    pub value: Option<i64>,
    /// Seconds since the last verdict or value.
    pub since_secs: Option<f64>,
}

/// One interface in `vipd status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub ifindex: u32,
    /// "xdp-native", "xdp-generic" or "tc".
    pub mode: String,
    /// The programs of an earlier vipd were found there and replaced in place.
    pub adopted: bool,
}

/// Control connections the server refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlStats {
    /// No complete request within the read timeout, or the reply not taken within the
    /// write timeout.
    pub timeout: u64,
    /// Request line longer than the size cap.
    pub too_large: u64,
    /// Connection beyond the limit of concurrent connections.
    pub too_many_connections: u64,
    /// Peer neither root nor the daemon's own user, or its credentials unreadable.
    pub bad_credentials: u64,
    /// Request that is not a valid JSON request.
    pub bad_request: u64,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Timeout,
    TooLarge,
    TooManyConnections,
    BadCredentials,
    BadRequest,
}

/// The server's counters, shared with the daemon, which reads them with
/// [`ServerStats::snapshot`].
#[derive(Clone, Debug, Default)]
pub struct ServerStats(Arc<ServerCounters>);

#[derive(Debug, Default)]
struct ServerCounters {
    timeout: AtomicU64,
    too_large: AtomicU64,
    too_many_connections: AtomicU64,
    bad_credentials: AtomicU64,
    bad_request: AtomicU64,
}

impl ServerStats {
    /// The counters as they are now.
    pub fn snapshot(&self) -> ControlStats {
        let c = &*self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ControlStats {
            timeout: get(&c.timeout),
            too_large: get(&c.too_large),
            too_many_connections: get(&c.too_many_connections),
            bad_credentials: get(&c.bad_credentials),
            bad_request: get(&c.bad_request),
        }
    }

    fn count(&self, why: Refusal) {
        let c = &*self.0;
        let counter = match why {
            Refusal::Timeout => &c.timeout,
            Refusal::TooLarge => &c.too_large,
            Refusal::TooManyConnections => &c.too_many_connections,
            Refusal::BadCredentials => &c.bad_credentials,
            Refusal::BadRequest => &c.bad_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a peer with user id `peer_uid` may use the control socket of a daemon running
/// with effective user id `own_euid`: root and the daemon's own user may.
pub fn allowed(peer_uid: u32, own_euid: u32) -> bool {
    peer_uid == 0 || peer_uid == own_euid
}

/// Serves the control socket on tasks of the current tokio runtime (it panics outside one)
/// and hands the daemon each parsed request on the returned channel, whose capacity covers
/// every connection the limits admit. Dropping the receiver stops accepting connections;
/// requests still in flight are then answered with an error.
pub fn serve(listener: UnixListener, limits: Limits) -> (mpsc::Receiver<Pending>, ServerStats) {
    spawn_server(listener, limits, nix::unistd::geteuid().as_raw(), allowed)
}

/// What every connection task shares.
struct Server {
    limits: Limits,
    requests: mpsc::Sender<Pending>,
    stats: ServerStats,
    own_euid: u32,
    allow: fn(u32, u32) -> bool,
}

fn spawn_server(
    listener: UnixListener,
    limits: Limits,
    own_euid: u32,
    allow: fn(u32, u32) -> bool,
) -> (mpsc::Receiver<Pending>, ServerStats) {
    let (requests, rx) = mpsc::channel(limits.max_connections.max(1));
    let stats = ServerStats::default();
    let server = Arc::new(Server {
        limits,
        requests,
        stats: stats.clone(),
        own_euid,
        allow,
    });
    tokio::spawn(accept_loop(listener, server));
    (rx, stats)
}

async fn accept_loop(listener: UnixListener, server: Arc<Server>) {
    let slots = Arc::new(Semaphore::new(server.limits.max_connections));
    loop {
        let conn = tokio::select! {
            _ = server.requests.closed() => break,
            conn = listener.accept() => conn,
        };
        let stream = match conn {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: let some connections finish.
                warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(serve_connection(stream, server.clone(), slot));
            }
            Err(_) => {
                server.stats.count(Refusal::TooManyConnections);
                debug!("control socket: too many connections, refusing one");
                refuse_at_once(
                    stream,
                    format!(
                        "too many control connections (at most {}); try again",
                        server.limits.max_connections
                    ),
                );
            }
        }
    }
    debug!("control socket: no longer accepting");
}

/// Answers an error without waiting: a fresh connection's send buffer is empty, so the
/// short reply fits; if it does not, the client just sees the connection closed.
fn refuse_at_once(stream: UnixStream, message: String) {
    use std::io::Write;
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let _ = (&stream).write_all(&reply_line(&Reply::Error { message }));
}

/// Serves one connection: checks the peer, reads its request, has the daemon answer it and
/// writes the reply. The slot is given back when this returns.
async fn serve_connection(
    mut stream: UnixStream,
    server: Arc<Server>,
    _slot: OwnedSemaphorePermit,
) {
    let limits = &server.limits;
    let reply = match admit(&mut stream, &server).await {
        Ok(Some(request)) => ask_daemon(&server.requests, request).await,
        // No request (e.g. a check that a daemon listens): nobody to answer.
        Ok(None) => return,
        Err((why, message)) => {
            server.stats.count(why);
            debug!(?why, %message, "control socket: refusing a connection");
            Reply::Error { message }
        }
    };
    if tokio::time::timeout(limits.write_timeout, write_reply(&mut stream, &reply))
        .await
        .is_err()
    {
        server.stats.count(Refusal::Timeout);
        debug!("control socket: client did not take its reply");
    }
}

/// The connection's request, if its peer may send one and sends a valid one in time; none
/// if the peer went away without sending one.
async fn admit(
    stream: &mut UnixStream,
    server: &Server,
) -> Result<Option<Request>, (Refusal, String)> {
    let denied = || (Refusal::BadCredentials, "permission denied".to_owned());
    let cred = stream.peer_cred().map_err(|_| denied())?;
    if !(server.allow)(cred.uid(), server.own_euid) {
        return Err(denied());
    }
    let limits = &server.limits;
    let read = tokio::time::timeout(limits.read_timeout, read_line(stream, limits.max_request));
    let line = match read.await {
        Err(_) => {
            return Err((
                Refusal::Timeout,
                format!(
                    "no complete request within {:.1}s",
                    limits.read_timeout.as_secs_f64()
                ),
            ));
        }
        // The peer went away (reset) or closed without a word: nobody to answer.
        Ok(Err(_)) | Ok(Ok(Line::Empty)) => return Ok(None),
        Ok(Ok(Line::TooLarge)) => {
            return Err((
                Refusal::TooLarge,
                format!("request larger than {} bytes", limits.max_request),
            ));
        }
        Ok(Ok(Line::Complete(line))) => line,
    };
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| (Refusal::BadRequest, format!("bad request: {e}")))
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Nothing before closing its side.
    Empty,
    /// More than the cap without a newline.
    TooLarge,
    /// A line (its newline included, if any: the client may close instead).
    Complete(Vec<u8>),
}

/// Reads one line of at most `max` bytes, newline included; never buffers more.
async fn read_line(stream: &mut UnixStream, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    BufReader::new(stream.take(max as u64))
        .read_until(b'\n', &mut line)
        .await?;
    Ok(if line.last() == Some(&b'\n') {
        Line::Complete(line)
    } else if line.len() >= max {
        Line::TooLarge
    } else if line.is_empty() {
        Line::Empty
    } else {
        Line::Complete(line)
    })
}

/// Hands `request` to the daemon and waits for its answer.
async fn ask_daemon(requests: &mpsc::Sender<Pending>, request: Request) -> Reply {
    let (reply, answer) = oneshot::channel();
    if requests.send(Pending { request, reply }).await.is_err() {
        return Reply::Error {
            message: "vipd is shutting down".to_owned(),
        };
    }
    answer.await.unwrap_or_else(|_| Reply::Error {
        message: "vipd did not answer the request".to_owned(),
    })
}

fn reply_line(reply: &Reply) -> Vec<u8> {
    let mut text = serde_json::to_vec(reply).expect("replies serialize");
    text.push(b'\n');
    text
}

/// Writes `reply` as one line and closes the sending side.
pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    stream.write_all(&reply_line(reply)).await?;
    stream.shutdown().await
}

/// Client side: sends `req` to the daemon at `path` and returns its reply.
pub async fn call(path: &Path, req: &Request) -> Result<Reply, ControlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = serde_json::to_string(req).expect("requests serialize");
    text.push('\n');
    // A daemon that refuses the connection answers and closes without reading, so a failed
    // write may still leave its reply to read.
    let sent = stream.write_all(text.as_bytes()).await;
    let mut line = String::new();
    let received = BufReader::new(&mut stream).read_line(&mut line).await;
    if line.trim().is_empty() {
        sent.map_err(io)?;
        received.map_err(io)?;
    }
    let reply: Reply =
        serde_json::from_str(&line).map_err(|e| ControlError::BadReply(e.to_string()))?;
    if let Reply::Error { message } = reply {
        return Err(ControlError::Refused(message));
    }
    Ok(reply)
}

/// `vipd status` as a table.
pub fn render(status: &Status) -> String {
    use std::fmt::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:>4}  {:<7} {:>9}  {:<15} {:>7} {:>7}  {:>9}  {:>5}  VIPS",
        "INTERFACE", "VHID", "STATE", "SINCE", "MASTER", "ADVBASE", "ADVSKEW", "LAST ADV", "TRANS"
    );
    for g in &status.groups {
        let state = if g.demoted {
            format!("{}*", g.state)
        } else {
            g.state.clone()
        };
        let _ = writeln!(
            s,
            "{:<10} {:>4}  {:<7} {:>8.1}s  {:<15} {:>7} {:>7}  {:>9}  {:>5}  {}",
            g.interface,
            g.vhid,
            state,
            g.since_secs,
            g.master.as_deref().unwrap_or("-"),
            g.advbase,
            g.advskew,
            g.last_advert_ms
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "-".into()),
            g.transitions,
            g.vips.join(",")
        );
        let rejected: Vec<String> = g
            .rejected
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        let _ = writeln!(
            s,
            "{:<10} {:>4}  sent={} (worst delay {:.1}ms) received={} rejected: {}",
            "",
            "",
            g.adverts_sent,
            g.worst_advert_delay_us as f64 / 1e3,
            g.adverts_received,
            if rejected.is_empty() {
                "none".to_owned()
            } else {
                rejected.join(" ")
            }
        );
        if g.demotion > 0 || !g.failing.is_empty() {
            let _ = writeln!(
                s,
                "{:17}demotion {} (failing: {})",
                "",
                g.demotion,
                if g.failing.is_empty() {
                    "none".to_owned()
                } else {
                    g.failing.join(", ")
                }
            );
        }
        if let Some(d) = &g.draining {
            let left = d
                .connections
                .map_or_else(|| "not counted yet".to_owned(), |n| n.to_string());
            let _ = writeln!(
                s,
                "{:17}draining: connections left {left}, {:.1}s to the limit",
                "", d.remaining_secs
            );
        }
        if let Some(f) = &g.forwarding {
            let _ = writeln!(
                s,
                "{:17}forwarding connections it has no socket for to {} ({}), {:.1}s left",
                "",
                f.to,
                f.mac.as_deref().unwrap_or("MAC unknown"),
                f.remaining_secs
            );
        }
        let mut history = Vec::new();
        if let Some(at) = g.last_owned_at_unix_us {
            history.push(format!("took the VIPs {} ago", ago(at, now)));
        }
        if let Some(us) = g.last_own_flip_us {
            history.push(format!("ownership write {us:.1}us"));
        }
        if let Some(at) = g.last_demote_at_unix_us {
            history.push(format!("demoted {} ago", ago(at, now)));
        }
        if !history.is_empty() {
            let _ = writeln!(s, "{:<10} {:>4}  {}", "", "", history.join(", "));
        }
    }
    if status.groups.iter().any(|g| g.demoted) {
        let _ = writeln!(s, "(* demoted: stays BACKUP until `vipd promote`)");
    }
    if status.unknown_group > 0 {
        let _ = writeln!(
            s,
            "advertisements for no configured group: {}",
            status.unknown_group
        );
    }
    let forwarding: Vec<String> = status
        .forwarding
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    if !forwarding.is_empty() {
        let _ = writeln!(
            s,
            "TCP segments for VIPs being forwarded: {}",
            forwarding.join(" ")
        );
    }
    let c = &status.control;
    let refused: Vec<String> = [
        ("timeout", c.timeout),
        ("too_large", c.too_large),
        ("too_many_connections", c.too_many_connections),
        ("bad_credentials", c.bad_credentials),
        ("bad_request", c.bad_request),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(r, n)| format!("{r}={n}"))
    .collect();
    if !refused.is_empty() {
        let _ = writeln!(s, "control connections refused: {}", refused.join(" "));
    }
    for t in &status.trackers {
        let verdict = match (t.healthy, t.value) {
            (Some(false), _) => "down".to_owned(),
            (_, Some(v)) => format!("value {v}"),
            (Some(true), None) => "up".to_owned(),
            (None, None) => "unknown".to_owned(),
        };
        let ago = t
            .since_secs
            .map(|s| format!(" ({s:.1}s ago)"))
            .unwrap_or_default();
        let _ = writeln!(s, "tracker {}: {verdict}{ago}", t.name);
    }
    for i in &status.interfaces {
        let _ = writeln!(
            s,
            "interface {} (ifindex {}): ingress {}",
            i.name, i.ifindex, i.mode
        );
    }
    let _ = writeln!(s, "\nXDP/TC verdicts:");
    for (name, n) in &status.xdp {
        let _ = writeln!(s, "  {name:<26} {n:>12}");
    }
    s
}

/// How long before `now` the wall-clock time `at` was (both in µs since the Unix epoch).
fn ago(at: u64, now: u64) -> String {
    format!("{:.1}s", now.saturating_sub(at) as f64 / 1e6)
}

#[cfg(test)]
mod tests;
