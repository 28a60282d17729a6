//! The control socket: `vipd status|demote|promote` talk to the running daemon over a unix
//! socket (mode 0600), one JSON request and one JSON reply per connection.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

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
    Demote { target: Target },
    Promote { target: Target },
}

/// One group in `vipd status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupStatus {
    pub interface: String,
    pub vhid: u8,
    pub vips: Vec<String>,
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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub groups: Vec<GroupStatus>,
    /// XDP/TC per-reason counters, summed over CPUs.
    pub xdp: Vec<(String, u64)>,
    /// Advertisements the ring buffer delivered for no configured group (left-over map
    /// entries of an earlier configuration).
    pub unknown_group: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Status(Status),
    Ok { changed: Vec<u8> },
    Error { message: String },
}

/// Default control socket: one per network namespace.
pub fn default_socket() -> PathBuf {
    PathBuf::from(format!(
        "/run/vipd/netns-{}.sock",
        crate::dataplane::netns_id()
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

/// Reads one request from a connection.
pub async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| format!("bad request: {e}"))
}

pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply).expect("replies serialize");
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
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
    stream.write_all(text.as_bytes()).await.map_err(io)?;
    let mut line = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut line)
        .await
        .map_err(io)?;
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
    let _ = writeln!(s, "\nXDP/TC verdicts:");
    for (name, n) in &status.xdp {
        let _ = writeln!(s, "  {name:<24} {n:>12}");
    }
    s
}
