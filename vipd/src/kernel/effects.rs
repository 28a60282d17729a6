//! [`Kernel`]: the effects boundary carried out for real, on the maps of the loaded
//! programs, packet sockets, rtnetlink and the script runner.
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::clock;
use super::dataplane::{Dataplane, DataplaneError, Reception, XdpPreference};
use super::garp::LinkSender;
use super::netlink::{LinkInfo, Netlink, harden_arp};
use super::rings::Rings;
use super::unicast::IpSender;
use crate::config::Vip;
use crate::daemon::effects::{EffectError, Effects, ForwardTarget};
use crate::ops::control::InterfaceStatus;
use crate::ops::scripts::{ScriptRun, ScriptRunner};
use crate::protocol::group::Lease;

/// The real side effects: BPF maps, packet sockets, rtnetlink, the script runner.
pub struct Kernel {
    /// The pin folder of the maps (`--bpffs-dir`).
    pin_dir: PathBuf,
    /// Loaded by [`Effects::open_dataplane`], once the interfaces are known.
    dp: Option<Dataplane>,
    nl: Netlink,
    senders: HashMap<u32, LinkSender>,
    ip_senders: HashMap<u32, IpSender>,
    scripts: ScriptRunner,
}

/// Counters by name.
pub type NamedCounts = Vec<(String, u64)>;

impl Kernel {
    /// Connects to rtnetlink and starts the script runner; the data plane is loaded by
    /// [`Effects::open_dataplane`].
    pub fn new(pin_dir: &Path) -> Result<Kernel, EffectError> {
        Ok(Kernel {
            pin_dir: pin_dir.to_owned(),
            dp: None,
            nl: Netlink::new()?,
            senders: HashMap::new(),
            ip_senders: HashMap::new(),
            scripts: ScriptRunner::start(),
        })
    }

    fn dp(&mut self) -> Result<&mut Dataplane, EffectError> {
        self.dp
            .as_mut()
            .ok_or(EffectError::Dataplane(DataplaneError::NotOpened))
    }

    /// The advertisement rings, for the event loop.
    pub fn open_rings(&mut self) -> anyhow::Result<Rings> {
        Rings::open(self.dp()?)
    }

    /// The kernel programs' receive counters and forwarding counters, by name.
    pub fn counters(&self) -> (NamedCounts, NamedCounts) {
        let Some(dp) = &self.dp else {
            return Default::default();
        };
        let named = |c: Vec<(&'static str, u64)>| c.into_iter().map(|(n, v)| (n.to_owned(), v));
        let rx = dp
            .counters()
            .map(|c| named(c.iter().collect()).collect())
            .unwrap_or_default();
        let fwd = dp
            .drain_counters()
            .map(|c| named(c).collect())
            .unwrap_or_default();
        (rx, fwd)
    }

    /// After a stop: waits (at most `scripts_for`) for the queued scripts, then detaches
    /// the programs from every interface but those in `guard`.
    pub async fn close(self, guard: &[u32], scripts_for: Duration) -> Result<(), EffectError> {
        let pending = self.scripts.close();
        let _ = tokio::time::timeout(scripts_for, pending).await;
        match self.dp {
            Some(dp) => Ok(dp.detach_all(guard)?),
            None => Ok(()),
        }
    }
}

impl Effects for Kernel {
    async fn link(&mut self, name: &str) -> Result<LinkInfo, EffectError> {
        Ok(self.nl.link(name).await?)
    }

    async fn addresses(&mut self, ifindex: u32) -> Result<Vec<Ipv4Addr>, EffectError> {
        Ok(self.nl.configured(ifindex).await?)
    }

    fn open_dataplane(&mut self, interfaces: &[u32]) -> Result<(), EffectError> {
        self.dp = Some(Dataplane::load(&self.pin_dir, interfaces)?);
        Ok(())
    }

    fn attach(
        &mut self,
        name: &str,
        link: &LinkInfo,
        mode: XdpPreference,
    ) -> Result<InterfaceStatus, EffectError> {
        if let Err(e) = harden_arp(name) {
            warn!(interface = %name, error = %e, "cannot set arp_ignore/arp_announce");
        }
        let attached = self.dp()?.attach(name, mode)?;
        info!(interface = %name, mode = attached.mode.name(), adopted = attached.adopted,
            "ingress and TC egress programs attached");
        let sender = LinkSender::new(link.index)
            .map_err(|e| EffectError::Setup(format!("opening a packet socket on {name}: {e}")))?;
        let ip_sender = IpSender::new(name)
            .map_err(|e| EffectError::Setup(format!("opening a raw IP socket on {name}: {e}")))?;
        self.senders.insert(link.index, sender);
        self.ip_senders.insert(link.index, ip_sender);
        Ok(InterfaceStatus {
            name: name.to_owned(),
            ifindex: attached.ifindex,
            mode: attached.mode.name().to_owned(),
            adopted: attached.adopted,
        })
    }

    fn attached(&self, ifindex: u32) -> bool {
        self.senders.contains_key(&ifindex)
    }

    fn register_group(
        &mut self,
        ifindex: u32,
        vhid: u8,
        rx: &Reception,
        vips: &[Ipv4Addr],
    ) -> Result<(), EffectError> {
        let dp = self.dp()?;
        for &vip in vips {
            dp.set_owner(ifindex, vip, vipd_common::VipOwner::NOT_OWNED)?;
        }
        Ok(dp.add_group(ifindex, vhid, rx)?)
    }

    fn retain(
        &mut self,
        keep_vip: &dyn Fn(u32, Ipv4Addr) -> bool,
        keep_group: &dyn Fn(u32, u8) -> bool,
    ) -> Result<(), EffectError> {
        Ok(self.dp()?.retain(keep_vip, keep_group)?)
    }

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
                renewed_ns: clock::ns_of(l.renewed).max(clock::monotonic_ns()),
                firm_until_ns: clock::ns_of(l.firm_until),
                grace_until_ns: clock::ns_of(l.grace_until),
                vhid: u32::from(vhid),
                _pad: 0,
            },
        };
        Ok(self.dp()?.set_owner(ifindex, vip, owner)?)
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

    fn send_packet(
        &mut self,
        ifindex: u32,
        dst: Ipv4Addr,
        packet: &[u8],
    ) -> Result<(), EffectError> {
        let sender = self.ip_senders.get(&ifindex).ok_or(EffectError::Send {
            ifindex,
            source: std::io::Error::other("no raw IP socket on this interface"),
        })?;
        sender
            .send(dst, packet)
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
        Ok(self.dp()?.add_known_peer(ifindex, addr)?)
    }

    fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<ForwardTarget>,
    ) -> Result<(), EffectError> {
        let target = target.map(|t| vipd_common::DrainTarget {
            until_ns: clock::ns_of(t.until),
            peer_mac: t.peer_mac,
            own_mac: t.own_mac,
            peer_addr: u32::from_ne_bytes(t.peer.octets()),
            vhid: u32::from(t.vhid),
            flags: if t.tail { vipd_common::DRAIN_TAIL } else { 0 },
        });
        Ok(self.dp()?.set_forward(ifindex, vip, target)?)
    }

    fn open_connections(&mut self) -> Result<HashMap<Ipv4Addr, u32>, EffectError> {
        super::sockdiag::open_connections().map_err(EffectError::SockDiag)
    }

    fn learn_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), EffectError> {
        Ok(self.dp()?.add_peer_mac(ifindex, mac)?)
    }

    fn last_seen(&self, ifindex: u32, vhid: u8) -> Option<(Instant, Ipv4Addr)> {
        let seen = self
            .dp
            .as_ref()?
            .group_seen(ifindex, vhid)
            .filter(|s| s.count > 0)?;
        let at = clock::instant_of(seen.last_seen_ns);
        Some((at, Ipv4Addr::from(seen.last_src.to_ne_bytes())))
    }
}
