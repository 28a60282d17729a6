//! What vipd keeps outside its memory: the instance lock of a network namespace (one vipd
//! per namespace) and the groups demoted with `--persist`, remembered across restarts.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tracing::warn;

use crate::kernel::dataplane::netns_id;

/// The instance lock of this network namespace: held for the daemon's life, taken before
/// anything in the kernel is touched.
pub fn lock_path() -> PathBuf {
    PathBuf::from(format!("/run/vipd/netns-{}.lock", netns_id()))
}

/// Takes the instance lock, or says which daemon holds it.
pub fn lock_instance() -> Result<nix::fcntl::Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    let path = lock_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another vipd (pid {}) already runs in this network namespace ({} is \
                     locked); one vipd serves every group of a namespace: stop it first, or \
                     give it all the groups with `vipd run --config`",
                pid.trim(),
                path.display()
            );
        }
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(lock)
}

/// Where the demoted groups of this network namespace are remembered.
pub fn demotions_path() -> PathBuf {
    PathBuf::from(format!("/var/lib/vipd/netns-{}.demoted", netns_id()))
}

/// The groups (interface, vhid) remembered as demoted; a missing or unreadable file is none.
pub fn load_demotions(path: &Path) -> Vec<(String, u8)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let (interface, vhid) = l.split_once(' ')?;
            Some((interface.to_owned(), vhid.trim().parse().ok()?))
        })
        .collect()
}

/// Remembers `groups` (interface, vhid) as demoted with `--persist` (written to a
/// temporary file, then renamed).
pub fn save_demotions<'a>(groups: impl Iterator<Item = (&'a str, u8)>, path: &Path) {
    let text: String = groups.map(|(i, v)| format!("{i} {v}\n")).collect();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        warn!(path = %path.display(), error = %e, "cannot remember the demoted groups");
    }
}
