//! The one boundary between vipd's decisions and the kernel: ownership leases in the XDP
//! map, frames out, VIP addresses, scripts. [`Kernel`] is the real implementation;
//! [`Recorder`] writes down what would have happened, so that the executor and the daemon's
//! event handling are tested without root.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::addr::{AddrError, Netlink};
use crate::config::Vip;
use crate::dataplane::{Dataplane, DataplaneError, monotonic_ns};
use crate::garp::LinkSender;
use crate::group::Lease;
use crate::scripts::{ScriptRun, ScriptRunner};

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    #[error(transparent)]
    Address(#[from] AddrError),
    #[error("sending on ifindex {ifindex}: {source}")]
    Send {
        ifindex: u32,
        source: std::io::Error,
    },
    #[error("counting connections (sock_diag): {0}")]
    SockDiag(std::io::Error),
}

/// What the daemon does to the outside world. Each call is one side effect.
// The daemon runs on one thread: the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Effects {
    /// Writes the ownership lease of `vip` (of group `vhid`) on `ifindex`; `None`: not owned.
    fn write_lease(
        &mut self,
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    ) -> Result<(), EffectError>;
    /// Sends one Ethernet frame on `ifindex`.
    fn send_frame(&mut self, ifindex: u32, frame: &[u8]) -> Result<(), EffectError>;
    /// Adds `vip` to `ifindex`; `true` when vipd created it.
    async fn add_address(&mut self, ifindex: u32, vip: Vip) -> Result<bool, EffectError>;
    /// Removes `vip` from `ifindex` (absent counts as removed).
    async fn remove_address(&mut self, ifindex: u32, vip: Vip) -> Result<(), EffectError>;
    /// Queues a script run.
    fn run_script(&mut self, run: ScriptRun);
    /// Gives advertisements from `addr` on `ifindex` the known peers' ring from now on.
    fn learn_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), EffectError>;
    /// When and from where the kernel program last saw an advertisement of group `vhid`
    /// (read only, for the log).
    fn last_seen(&self, ifindex: u32, vhid: u8) -> Option<(Instant, Ipv4Addr)>;
    /// Forwards the TCP segments for `vip` on `ifindex` that belong to no connection of
    /// this node to `target`; `None` stops it.
    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError>;
    /// The open TCP connections of this node by local address (for a drain).
    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError>;
    /// Segments from `mac` on `ifindex`, a CARP peer's MAC, are never forwarded.
    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError>;
}

/// Where a graceful take-over forwards the previous master's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardTarget {
    pub vhid: u8,
    /// The previous master.
    pub peer: Ipv4Addr,
    pub peer_mac: [u8; 6],
    /// The interface's own MAC, the forwarded frames' source.
    pub own_mac: [u8; 6],
    pub until: Instant,
    /// Forward without owning the VIP: this node just handed it over.
    pub tail: bool,
}

/// The real side effects: BPF maps, packet sockets, rtnetlink, the script runner.
pub struct Kernel {
    pub dp: Dataplane,
    pub nl: Netlink,
    pub senders: HashMap<u32, LinkSender>,
    pub scripts: ScriptRunner,
}

/// CLOCK_MONOTONIC nanoseconds of `t` (`Instant` is CLOCK_MONOTONIC on Linux).
fn monotonic_ns_of(t: Instant) -> u64 {
    let (now, now_ns) = (Instant::now(), monotonic_ns());
    if t >= now {
        now_ns + (t - now).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now - t).as_nanos() as u64)
    }
}

impl Effects for Kernel {
    fn write_lease(
        &mut self,
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    ) -> Result<(), EffectError> {
        let owner = match lease {
            None => vipd_common::VipOwner::NOT_OWNED,
            Some(l) => vipd_common::VipOwner {
                // The write itself: an advertisement the kernel saw before it (the one
                // that made us take over, say) never ends the grace of this lease.
                renewed_ns: monotonic_ns_of(l.renewed).max(monotonic_ns()),
                firm_until_ns: monotonic_ns_of(l.firm_until),
                grace_until_ns: monotonic_ns_of(l.grace_until),
                vhid: u32::from(vhid),
                _pad: 0,
            },
        };
        Ok(self.dp.set_owner(ifindex, vip, owner)?)
    }

    fn send_frame(&mut self, ifindex: u32, frame: &[u8]) -> Result<(), EffectError> {
        let sender = self.senders.get(&ifindex).ok_or(EffectError::Send {
            ifindex,
            source: std::io::Error::other("no packet socket on this interface"),
        })?;
        sender
            .send(frame)
            .map_err(|source| EffectError::Send { ifindex, source })
    }

    async fn add_address(&mut self, ifindex: u32, vip: Vip) -> Result<bool, EffectError> {
        Ok(self.nl.add(ifindex, vip).await?)
    }

    async fn remove_address(&mut self, ifindex: u32, vip: Vip) -> Result<(), EffectError> {
        Ok(self.nl.del(ifindex, vip).await?)
    }

    fn run_script(&mut self, run: ScriptRun) {
        self.scripts.queue(run);
    }

    fn learn_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), EffectError> {
        Ok(self.dp.add_known_peer(ifindex, addr)?)
    }

    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError> {
        let target = target.map(|t| vipd_common::DrainTarget {
            until_ns: monotonic_ns_of(t.until),
            peer_mac: t.peer_mac,
            own_mac: t.own_mac,
            peer_addr: u32::from_ne_bytes(t.peer.octets()),
            vhid: u32::from(t.vhid),
            flags: if t.tail { vipd_common::DRAIN_TAIL } else { 0 },
        });
        Ok(self.dp.set_forward(ifindex, vip, target)?)
    }

    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError> {
        crate::sockdiag::open_connections().map_err(EffectError::SockDiag)
    }

    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError> {
        Ok(self.dp.add_peer_mac(ifindex, mac)?)
    }

    fn last_seen(&self, ifindex: u32, vhid: u8) -> Option<(Instant, Ipv4Addr)> {
        let seen = self.dp.group_seen(ifindex, vhid).filter(|s| s.count > 0)?;
        let (now, now_ns) = (Instant::now(), monotonic_ns());
        let age = std::time::Duration::from_nanos(now_ns.saturating_sub(seen.last_seen_ns));
        let at = now.checked_sub(age).unwrap_or(now);
        Some((at, Ipv4Addr::from(seen.last_src.to_ne_bytes())))
    }
}

/// One recorded side effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Lease {
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    },
    Frame {
        ifindex: u32,
        frame: Vec<u8>,
    },
    AddAddress {
        ifindex: u32,
        vip: Vip,
    },
    RemoveAddress {
        ifindex: u32,
        vip: Vip,
    },
    Script {
        script: std::path::PathBuf,
        args: Vec<String>,
    },
    Peer {
        ifindex: u32,
        addr: Ipv4Addr,
    },
    Forward {
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    },
    PeerMac {
        ifindex: u32,
        mac: [u8; 6],
    },
}

/// Records every side effect in order and carries none out. Addresses already present
/// (`present`) make `add_address` report that vipd did not create them.
#[derive(Debug, Default)]
pub struct Recorder {
    pub log: Vec<Effect>,
    pub present: Vec<(u32, Ipv4Addr)>,
    /// Makes `send_frame` fail, as a link without carrier does.
    pub fail_sends: bool,
    /// What `open_connections` reports.
    pub connections: HashMap<Ipv4Addr, u32>,
}

impl Recorder {
    /// The recorded effects, emptying the log.
    pub fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.log)
    }
}

impl Effects for Recorder {
    fn write_lease(
        &mut self,
        ifindex: u32,
        vhid: u8,
        vip: Ipv4Addr,
        lease: Option<Lease>,
    ) -> Result<(), EffectError> {
        self.log.push(Effect::Lease {
            ifindex,
            vhid,
            vip,
            lease,
        });
        Ok(())
    }

    fn send_frame(&mut self, ifindex: u32, frame: &[u8]) -> Result<(), EffectError> {
        if self.fail_sends {
            return Err(EffectError::Send {
                ifindex,
                source: std::io::Error::from_raw_os_error(libc::ENETDOWN),
            });
        }
        self.log.push(Effect::Frame {
            ifindex,
            frame: frame.to_vec(),
        });
        Ok(())
    }

    async fn add_address(&mut self, ifindex: u32, vip: Vip) -> Result<bool, EffectError> {
        self.log.push(Effect::AddAddress { ifindex, vip });
        let created = !self.present.contains(&(ifindex, vip.addr));
        if created {
            self.present.push((ifindex, vip.addr));
        }
        Ok(created)
    }

    async fn remove_address(&mut self, ifindex: u32, vip: Vip) -> Result<(), EffectError> {
        self.log.push(Effect::RemoveAddress { ifindex, vip });
        self.present.retain(|p| *p != (ifindex, vip.addr));
        Ok(())
    }

    fn run_script(&mut self, run: ScriptRun) {
        self.log.push(Effect::Script {
            script: run.script,
            args: run.args,
        });
    }

    fn learn_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<(), EffectError> {
        self.log.push(Effect::Peer { ifindex, addr });
        Ok(())
    }

    fn last_seen(&self, _ifindex: u32, _vhid: u8) -> Option<(Instant, Ipv4Addr)> {
        None
    }

    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError> {
        self.log.push(Effect::Forward {
            ifindex,
            vip,
            target,
        });
        Ok(())
    }

    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError> {
        Ok(self.connections.clone())
    }

    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError> {
        self.log.push(Effect::PeerMac { ifindex, mac });
        Ok(())
    }
}
