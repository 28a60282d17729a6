//! What the daemon keeps of root once it is set up: it caps its real-time CPU time, sets
//! `no_new_privs`, and keeps only the capabilities it still uses.
//!
//! Kept: `CAP_NET_ADMIN` (VIP addresses in "move" mode, detaching the programs at exit, and
//! what up/down scripts usually do: `ip addr`), `CAP_NET_RAW` (scripts' `arping`),
//! `CAP_SETUID` and `CAP_SETGID` (running scripts as `script_user`), `CAP_KILL` (ending a
//! timed-out script's process group), `CAP_DAC_OVERRIDE` (scripts writing state files as
//! root). Everything else goes: loading BPF programs, mounting, changing the scheduler,
//! tracing other processes. Scripts run as root get at most this set: `no_new_privs` stops
//! them from regaining more.
use std::time::Duration;

use caps::{CapSet, Capability, CapsHashSet};

/// Longest the daemon may run at real-time priority without blocking: past the soft limit
/// the kernel sends SIGXCPU, past the hard one SIGKILL, so a runaway loop cannot freeze a
/// CPU (the node then fails over like any dead node).
pub const RT_SOFT_LIMIT: Duration = Duration::from_millis(500);
pub const RT_HARD_LIMIT: Duration = Duration::from_secs(1);

/// The capabilities the running daemon keeps.
pub const KEPT: [Capability; 6] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETUID,
    Capability::CAP_SETGID,
    Capability::CAP_KILL,
    Capability::CAP_DAC_OVERRIDE,
];

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("cannot limit real-time CPU time (RLIMIT_RTTIME): {0}")]
    RtTime(nix::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
    #[error("cannot drop capabilities: {0}")]
    Caps(#[from] caps::errors::CapsError),
}

/// Applies the limits to this process. Returns the capabilities kept.
pub fn restrict() -> Result<CapsHashSet, PrivilegeError> {
    let micros = |d: Duration| d.as_micros() as u64;
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_RTTIME,
        micros(RT_SOFT_LIMIT),
        micros(RT_HARD_LIMIT),
    )
    .map_err(PrivilegeError::RtTime)?;
    nix::sys::prctl::set_no_new_privs().map_err(PrivilegeError::NoNewPrivs)?;
    let permitted = caps::read(None, CapSet::Permitted)?;
    let keep: CapsHashSet = KEPT
        .iter()
        .copied()
        .filter(|c| permitted.contains(c))
        .collect();
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())?;
    Ok(keep)
}
