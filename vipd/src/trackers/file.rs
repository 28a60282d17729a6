//! File trackers: an integer read from a file, again when inotify reports a change.
use super::*;

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
pub(super) fn read_value(path: &Path) -> Result<i64, String> {
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
pub(super) fn watched_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// What in the directory makes the file be read again: a writer closing it, a file
/// renamed into or out of place, its removal. Creation alone is not: the file may still
/// be empty; its writer's close follows.
pub(super) fn dir_events() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

pub(super) struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify watch on a file's directory.
pub(super) struct FileWatch {
    fd: AsyncFd<InotifyFd>,
    dir: PathBuf,
    wd: Option<WatchDescriptor>,
}

impl FileWatch {
    pub(super) fn new(path: &Path) -> std::io::Result<FileWatch> {
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
pub(super) struct FileState {
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

pub(super) async fn run_file(out: Out, path: PathBuf, mut watch: FileWatch) {
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
