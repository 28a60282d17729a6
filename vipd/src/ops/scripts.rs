//! Up and down scripts, run as ucarp runs them (`<script> <interface> <vip> <xparam>`, once
//! per VIP), one at a time in transition order, each under a timeout, on a task of their own
//! so that a slow script never delays an advertisement or a timer.
//!
//! What keeps a script from being a way in or a way to stall the node:
//! - [`check_script`]: at configuration time, a script that anyone but root, the script
//!   user or vipd's own user could replace (through the file or any directory above it) is
//!   refused.
//! - [`ScriptUser`]: a script can run as an unprivileged user, with that user's groups.
//! - Each run is a process group of its own with stdin on /dev/null; on timeout the whole
//!   group is killed, so what the script started in the background goes with it.
//! - [`ScriptQueue`]: at most [`MAX_PENDING`] runs wait; a later transition of a group
//!   replaces the run still waiting for the same VIP, and when the queue is full the oldest
//!   waiting run is dropped (and counted).
use std::collections::VecDeque;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Runs waiting at most: enough for every group of a node (vhids 1..=255) to have one
/// waiting, as happens at start-up when each runs its down script.
pub const MAX_PENDING: usize = 256;

/// The user a script runs as, resolved when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUser {
    pub name: String,
    pub uid: u32,
    /// The user's primary group.
    pub gid: u32,
    /// Supplementary groups, as initgroups(3) would set them.
    pub groups: Vec<u32>,
}

impl ScriptUser {
    /// Looks `name` up in the user database (a numeric uid is accepted when it has an entry).
    pub fn lookup(name: &str) -> Result<ScriptUser, String> {
        let entry = match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Some(u),
            Ok(None) => match name.parse::<u32>() {
                Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .map_err(|e| format!("cannot look up uid {uid}: {e}"))?,
                Err(_) => None,
            },
            Err(e) => return Err(format!("cannot look up user {name:?}: {e}")),
        };
        let user = entry.ok_or_else(|| format!("no such user: {name:?}"))?;
        let cname = CString::new(user.name.as_str())
            .map_err(|_| format!("user name {name:?} holds a NUL byte"))?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid)
            .map_err(|e| format!("cannot list the groups of {name:?}: {e}"))?
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        Ok(ScriptUser {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups,
        })
    }
}

/// Refuses a script that someone other than root, the script user or vipd's own user could
/// replace: the file must be a regular file, owned by one of them and not writable by group
/// or others; every directory on its path (symbolic links followed, each one checked) must
/// be owned by one of them and not writable by group or others, unless it has the sticky
/// bit (as /tmp has). The error names the path at fault.
pub fn check_script(path: &Path, user: Option<&ScriptUser>) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let trusted = |uid: u32| uid == 0 || uid == me || user.is_some_and(|u| u.uid == uid);
    let owner_hint = |what: &Path, uid: u32| {
        format!(
            "{} is owned by uid {uid}, not by root{}",
            what.display(),
            user.map(|u| format!(" or {}", u.name)).unwrap_or_default()
        )
    };
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?
            .join(path)
    };
    let check_dir = |dir: &Path| -> Result<(), String> {
        let md = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !trusted(md.uid()) {
            return Err(format!(
                "{} (a directory above {})",
                owner_hint(dir, md.uid()),
                path.display()
            ));
        }
        if md.mode() & 0o022 != 0 && md.mode() & libc::S_ISVTX == 0 {
            return Err(format!(
                "{} (a directory above {}) is writable by group or others",
                dir.display(),
                path.display()
            ));
        }
        Ok(())
    };
    let mut pending: VecDeque<PathBuf> = components(&absolute);
    let mut dir = PathBuf::from("/");
    check_dir(&dir)?;
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name.as_os_str() == ".." {
            dir.pop();
            continue;
        }
        let next = dir.join(&name);
        let md =
            std::fs::symlink_metadata(&next).map_err(|e| format!("{}: {e}", next.display()))?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return Err(format!("{}: too many symbolic links", path.display()));
            }
            let target =
                std::fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
            if target.is_absolute() {
                dir = PathBuf::from("/");
            }
            for c in components(&target).into_iter().rev() {
                pending.push_front(c);
            }
            continue;
        }
        if pending.is_empty() {
            if !md.is_file() {
                return Err(format!("{} is not a regular file", next.display()));
            }
            if !trusted(md.uid()) {
                return Err(owner_hint(&next, md.uid()));
            }
            if md.mode() & 0o022 != 0 {
                return Err(format!(
                    "{} is writable by group or others (mode {:o})",
                    next.display(),
                    md.mode() & 0o7777
                ));
            }
            return Ok(());
        }
        if !md.is_dir() {
            return Err(format!("{} is not a directory", next.display()));
        }
        check_dir(&next)?;
        dir = next;
    }
    Err(format!("{} is not a file", path.display()))
}

/// The names along `path`, `.` left out, `..` kept.
fn components(path: &Path) -> VecDeque<PathBuf> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// One script run.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    pub vhid: u8,
    pub script: PathBuf,
    /// `<interface> <vip> [xparam]`.
    pub args: Vec<String>,
    pub timeout: Duration,
    /// Run as this user; `None`: as vipd's own user (root, as ucarp does).
    pub user: Option<ScriptUser>,
}

impl ScriptRun {
    /// Runs with the same key are for the same VIP of the same group: only the latest counts.
    fn key(&self) -> (u8, Option<&str>, Option<&str>) {
        (
            self.vhid,
            self.args.first().map(String::as_str),
            self.args.get(1).map(String::as_str),
        )
    }
}

/// What [`ScriptQueue::push`] did.
#[derive(Debug)]
pub enum Pushed {
    Queued,
    /// A run for the same VIP of the same group was waiting: it was dropped, the new one
    /// queued at the end.
    Replaced(ScriptRun),
    /// The queue was full: its oldest run was dropped.
    DroppedOldest(ScriptRun),
}

/// The runs waiting, in order, bounded and coalesced.
#[derive(Debug)]
pub struct ScriptQueue {
    pending: VecDeque<ScriptRun>,
    capacity: usize,
    /// Runs replaced by a later transition of their group and VIP.
    pub replaced: u64,
    /// Runs dropped because the queue was full.
    pub dropped: u64,
}

impl ScriptQueue {
    pub fn new(capacity: usize) -> ScriptQueue {
        ScriptQueue {
            pending: VecDeque::new(),
            capacity: capacity.max(1),
            replaced: 0,
            dropped: 0,
        }
    }

    pub fn push(&mut self, run: ScriptRun) -> Pushed {
        if let Some(i) = self.pending.iter().position(|p| p.key() == run.key()) {
            let old = self.pending.remove(i).expect("index from position");
            self.pending.push_back(run);
            self.replaced += 1;
            return Pushed::Replaced(old);
        }
        let dropped = if self.pending.len() >= self.capacity {
            self.dropped += 1;
            self.pending.pop_front()
        } else {
            None
        };
        self.pending.push_back(run);
        match dropped {
            Some(old) => Pushed::DroppedOldest(old),
            None => Pushed::Queued,
        }
    }

    pub fn pop(&mut self) -> Option<ScriptRun> {
        self.pending.pop_front()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

struct Shared {
    queue: Mutex<(ScriptQueue, bool)>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, (ScriptQueue, bool)> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs scripts one at a time from a [`ScriptQueue`].
pub struct ScriptRunner {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ScriptRunner {
    /// Starts the runner task on the current runtime.
    pub fn start() -> ScriptRunner {
        ScriptRunner::with_capacity(MAX_PENDING)
    }

    /// A runner whose queue holds at most `capacity` waiting runs.
    pub fn with_capacity(capacity: usize) -> ScriptRunner {
        let shared = Arc::new(Shared {
            queue: Mutex::new((ScriptQueue::new(capacity), false)),
            wake: Notify::new(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let next = {
                    let mut q = s.lock();
                    match q.0.pop() {
                        Some(run) => Some(run),
                        None if q.1 => return,
                        None => None,
                    }
                };
                match next {
                    Some(run) => execute(run).await,
                    None => s.wake.notified().await,
                }
            }
        });
        ScriptRunner {
            shared,
            task: Some(task),
        }
    }

    /// Stops taking runs; the returned task ends once the queued ones have run.
    pub fn close(mut self) -> tokio::task::JoinHandle<()> {
        self.shared.lock().1 = true;
        self.shared.wake.notify_one();
        self.task.take().expect("the task is taken only here")
    }

    pub fn queue(&self, run: ScriptRun) {
        let pushed = {
            let mut q = self.shared.lock();
            if q.1 {
                drop(q);
                tracing::error!(vhid = run.vhid, script = %run.script.display(),
                    "script runner has stopped; a script was not run");
                return;
            }
            let pushed = q.0.push(run);
            (pushed, q.0.dropped)
        };
        match pushed {
            (Pushed::Queued, _) => {}
            (Pushed::Replaced(old), _) => {
                tracing::debug!(vhid = old.vhid, script = %old.script.display(), args = ?old.args,
                    "a waiting script run was replaced by a later transition");
            }
            (Pushed::DroppedOldest(old), total) => {
                tracing::warn!(vhid = old.vhid, script = %old.script.display(), args = ?old.args,
                    dropped_total = total, "script queue full: the oldest waiting run was dropped");
            }
        }
        self.shared.wake.notify_one();
    }
}

impl Drop for ScriptRunner {
    fn drop(&mut self) {
        self.shared.lock().1 = true;
        self.shared.wake.notify_one();
    }
}

/// Runs one script to its end or its timeout; on timeout its whole process group is killed.
async fn execute(run: ScriptRun) {
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new(&run.script);
    cmd.args(&run.args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .process_group(0);
    if let Some(user) = &run.user {
        let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
        // SAFETY: the closure runs in the child between fork and exec and makes only
        // async-signal-safe system calls, on memory it owns.
        unsafe {
            cmd.pre_exec(move || drop_privileges(uid, gid, &groups));
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(vhid = run.vhid, script = %run.script.display(), error = %e, "cannot run script");
            return;
        }
    };
    let pgid = child.id();
    match tokio::time::timeout(run.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::info!(vhid = run.vhid, script = %run.script.display(), args = ?run.args,
                ms = started.elapsed().as_millis() as u64, "script done");
        }
        Ok(Ok(status)) => {
            tracing::warn!(vhid = run.vhid, script = %run.script.display(), args = ?run.args,
                %status, "script failed");
        }
        Ok(Err(e)) => {
            tracing::error!(vhid = run.vhid, script = %run.script.display(), error = %e, "script wait failed");
        }
        Err(_) => {
            // The script has not been waited for, so its pid (the group's id) is still ours.
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) of the process group this run created.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            tracing::error!(vhid = run.vhid, script = %run.script.display(),
                timeout_ms = run.timeout.as_millis() as u64,
                "script timed out and was killed with its process group");
        }
    }
}

/// In the child: takes on the script user's groups, then its group, then its uid.
pub(crate) fn drop_privileges(uid: u32, gid: u32, groups: &[u32]) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls; `groups` outlives the call.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()))?;
        check(libc::setgid(gid))?;
        check(libc::setuid(uid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
