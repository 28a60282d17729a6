//! Process trackers: one scan of /proc, then a pidfd per matching process.
use super::*;

/// How a process tracker recognises its processes.
#[derive(Clone, Debug)]
pub(super) enum Match {
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
pub(super) fn process_matches(pid: i32, m: &Match) -> bool {
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
pub(super) fn scan(m: &Match) -> Vec<i32> {
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
pub(super) fn readable<T: AsRawFd>(owner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: `owner` owns its descriptor (an OwnedFd, or an inotify instance holding
    // one), keeps it open and returns the same one for as long as the AsyncFd holds it.
    unsafe { AsyncFd::register_with_interest(owner, Interest::READABLE) }
        .map_err(std::io::Error::from)
}

pub(super) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
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
pub(super) fn watch_matches(m: &Match) -> Vec<AsyncFd<OwnedFd>> {
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
pub(super) async fn run_process(out: Out, mut h: Hysteresis, m: Match) {
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
