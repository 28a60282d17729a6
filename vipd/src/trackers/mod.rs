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

use crate::kernel::netlink::{AddrError, LinkEvent, LinkWatch, Netlink};
use crate::ops::scripts::{self, ScriptUser};

mod file;
mod interface;
mod probe;
mod process;
#[cfg(test)]
mod tests;

pub use crate::config::trackers::{TrackerConfig, TrackerKind};
use file::*;
use interface::*;
pub use probe::http_request;
use probe::*;
use process::*;

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
