//! The kernel side of vipd as seen from user space: load the XDP and TC programs, attach them
//! to interfaces, flip VIP ownership, register CARP groups, read the per-reason counters.
//!
//! The programs are attached through netlink (XDP with `IFLA_XDP`, TC as a clsact filter
//! with a fixed priority), not through BPF links: the kernel keeps them, and the maps they
//! use, when the daemon dies, whatever its mount namespace and with no pin at all. The
//! ownership leases in `VIP_OWNER` then run out on their own and the node stops answering
//! ARP. A restarted daemon finds the program through the interface, adopts its maps and
//! replaces the program in place, without a moment in which none is attached.
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::links::Link as _;
use aya::programs::tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcHandle};
use aya::programs::{SchedClassifier, TcAttachType, Xdp, tc};
use aya::{Ebpf, EbpfLoader};
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached};
use netlink_packet_route::tc::{TcAttribute, TcHandle as NlTcHandle, TcMessage, TcOption};
use netlink_packet_utils::nla::Nla;
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use vipd_common::{
    DRAIN_STAT_COUNT, DrainStat, DrainTarget, GROUP_ANY_TTL, GROUP_UNICAST, GroupPeerKey,
    MAP_ADVERTS, MAP_DRAIN, MAP_DRAIN_ACTIVE, MAP_DRAIN_STATS, MAP_GROUP_PEERS, MAP_KNOWN_PEERS,
    MAP_PEER_ADVERTS, MAP_PEER_MACS, MAP_STATS, MAP_VHIDS, MAP_VIP_OWNER, PeerKey, PeerMacKey,
    REASON_COUNT, Reason, TC_EGRESS_PROGRAM, TC_INGRESS_PROGRAM, VhidKey, VhidSeen, VipKey,
    VipOwner, XDP_PROGRAM,
};

/// The XDP/TC object built by `cargo xtask build-ebpf` (empty when vipd was built without
/// it: see build.rs).
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("VIPD_EBPF_OBJ"));

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("cannot prepare bpffs directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot mount bpffs on /sys/fs/bpf: {0}")]
    MountBpffs(std::io::Error),
    #[error("cannot load the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error(
        "this vipd was built without its XDP object: run `cargo xtask build-ebpf`, then build vipd again"
    )]
    NoObject,
    #[error("the data plane is used before it was opened")]
    NotOpened,
    #[error("{what}: {source}")]
    Program {
        what: String,
        source: aya::programs::ProgramError,
    },
    #[error("{what}: {source}")]
    Map {
        what: String,
        source: aya::maps::MapError,
    },
    #[error("{what}: {detail}")]
    Link { what: String, detail: String },
    #[error("no interface named {0}")]
    NoInterface(String),
    #[error("BPF_PROG_TEST_RUN failed: {0}")]
    TestRun(std::io::Error),
}

type Result<T> = std::result::Result<T, DataplaneError>;

fn prog_err(what: impl Into<String>) -> impl FnOnce(aya::programs::ProgramError) -> DataplaneError {
    let what = what.into();
    move |source| DataplaneError::Program { what, source }
}

fn map_err(what: impl Into<String>) -> impl FnOnce(aya::maps::MapError) -> DataplaneError {
    let what = what.into();
    move |source| DataplaneError::Map { what, source }
}

fn link_err<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> DataplaneError {
    let what = what.into();
    move |e| DataplaneError::Link {
        what,
        detail: e.to_string(),
    }
}

/// Inode of this process's network namespace: makes default paths unique per namespace.
pub fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Default pin directory: one per network namespace, so daemons in different namespaces
/// never share maps.
pub fn default_pin_dir() -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/vipd/netns-{}", netns_id()))
}

/// Interface index of `name`.
pub fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|_| DataplaneError::NoInterface(name.to_owned()))
}

/// Where to take ingress decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpPreference {
    /// Native XDP on physical NICs whose driver keeps its offloads with an XDP program;
    /// TC ingress on virtual devices (veth, VLAN, bond, ...) and virtio-net, where a
    /// native XDP program turns segmentation offload off or is refused.
    #[default]
    Auto,
    /// Native (driver) XDP, generic only if the driver refuses it.
    Native,
    /// Generic (skb) XDP.
    Generic,
    /// A TC ingress program with the same decisions and ring buffers.
    Tc,
}

/// How the ingress program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (skb) XDP.
    Generic,
    /// TC ingress (clsact).
    Tc,
}

impl AttachMode {
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "xdp-native",
            AttachMode::Generic => "xdp-generic",
            AttachMode::Tc => "tc",
        }
    }
}

/// What [`Dataplane::attach`] did on one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub ifindex: u32,
    pub mode: AttachMode,
    /// An earlier vipd's programs were there and were replaced in place.
    pub adopted: bool,
}

/// The hook `Auto` picks for `ifname`: native XDP only on a physical NIC (it has a
/// `device` in sysfs) whose driver is not virtio-net.
pub fn auto_mode(ifname: &str) -> XdpPreference {
    let device = Path::new("/sys/class/net").join(ifname).join("device");
    let driver = std::fs::read_link(device.join("driver")).ok();
    let driver = driver
        .as_ref()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str());
    match driver {
        Some(d) if d != "virtio_net" => XdpPreference::Native,
        _ => XdpPreference::Tc,
    }
}

/// Per-reason packet counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonCounts(pub [u64; REASON_COUNT as usize]);

impl ReasonCounts {
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize]
    }

    /// (name, value) for every reason, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Reason::ALL.iter().map(|r| (r.name(), self.get(*r)))
    }
}

/// The loaded programs and their maps.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    vip_owner: HashMap<MapData, VipKey, VipOwner>,
    vhids: HashMap<MapData, VhidKey, VhidSeen>,
    stats: PerCpuArray<MapData, u64>,
    adverts: Option<RingBuf<MapData>>,
    peer_adverts: Option<RingBuf<MapData>>,
    known_peers: HashMap<MapData, PeerKey, u32>,
    drain: HashMap<MapData, VipKey, DrainTarget>,
    drain_active: Array<MapData, u32>,
    drain_stats: PerCpuArray<MapData, u64>,
    peer_macs: HashMap<MapData, PeerMacKey, u32>,
    group_peers: HashMap<MapData, GroupPeerKey, u32>,
    attached: Vec<(String, u32)>,
}

/// Which advertisements of a group the programs hand to the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reception {
    /// Where they must be sent: the multicast group (or broadcast), or for a unicast group
    /// this node's own address.
    pub destination: Ipv4Addr,
    /// A unicast group's peers, the only sources accepted; empty for a multicast group.
    pub peers: Vec<Ipv4Addr>,
    /// Whether only TTL 255 is accepted.
    pub ttl_check: bool,
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
        .unwrap_or(false)
}

/// Makes sure `pin_dir` lies on a bpffs. Under /sys/fs/bpf one is mounted when missing;
/// elsewhere the operator chose the place and must mount it.
fn ensure_bpffs(pin_dir: &Path) -> Result<()> {
    let sys = Path::new("/sys/fs/bpf");
    let ancestor = pin_dir
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    if is_bpffs(ancestor) {
        return Ok(());
    }
    if !pin_dir.starts_with(sys) {
        return Err(DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source: std::io::Error::other(
                "not on a bpffs: mount one first (mount -t bpf bpf <dir>)",
            ),
        });
    }
    nix::mount::mount(
        Some("bpf"),
        sys,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| DataplaneError::MountBpffs(e.into()))?;
    Ok(())
}

impl Dataplane {
    /// Loads the programs. When vipd's XDP program is already attached to one of
    /// `interfaces` (an earlier vipd died or stopped guarding), its maps are adopted: they
    /// are pinned in `pin_dir` and the loader reuses them. Otherwise the maps start empty.
    pub fn load(pin_dir: &Path, interfaces: &[u32]) -> Result<Self> {
        if EBPF_OBJECT.is_empty() {
            return Err(DataplaneError::NoObject);
        }
        ensure_bpffs(pin_dir)?;
        std::fs::create_dir_all(pin_dir).map_err(|source| DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source,
        })?;
        let mut found = None;
        for &ifindex in interfaces {
            let id = match xdp_attached(ifindex)? {
                Some((id, _)) => Some(id),
                None => tc_program(ifindex, TcAttachType::Ingress)?,
            };
            if let Some(id) = id {
                found = Some(vipd_program(ifindex, id)?);
                break;
            }
        }
        for map in OUR_MAPS {
            let _ = std::fs::remove_file(pin_dir.join(map));
        }
        if let Some(program) = &found {
            adopt_maps(program, pin_dir)?;
        }
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(pin_dir)
            .load(EBPF_OBJECT)?;
        let xdp: &mut Xdp = ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataplaneError::Missing("XDP program"))?
            .try_into()
            .map_err(prog_err("XDP program"))?;
        xdp.load().map_err(prog_err("loading the XDP program"))?;
        let tc: &mut SchedClassifier = ebpf
            .program_mut(TC_EGRESS_PROGRAM)
            .ok_or(DataplaneError::Missing("TC program"))?
            .try_into()
            .map_err(prog_err("TC program"))?;
        tc.load().map_err(prog_err("loading the TC program"))?;
        let tc_in: &mut SchedClassifier = ebpf
            .program_mut(TC_INGRESS_PROGRAM)
            .ok_or(DataplaneError::Missing("TC ingress program"))?
            .try_into()
            .map_err(prog_err("TC ingress program"))?;
        tc_in
            .load()
            .map_err(prog_err("loading the TC ingress program"))?;
        let vip_owner = HashMap::try_from(
            ebpf.take_map(MAP_VIP_OWNER)
                .ok_or(DataplaneError::Missing(MAP_VIP_OWNER))?,
        )
        .map_err(map_err(MAP_VIP_OWNER))?;
        let vhids = HashMap::try_from(
            ebpf.take_map(MAP_VHIDS)
                .ok_or(DataplaneError::Missing(MAP_VHIDS))?,
        )
        .map_err(map_err(MAP_VHIDS))?;
        let stats = PerCpuArray::try_from(
            ebpf.take_map(MAP_STATS)
                .ok_or(DataplaneError::Missing(MAP_STATS))?,
        )
        .map_err(map_err(MAP_STATS))?;
        let adverts = RingBuf::try_from(
            ebpf.take_map(MAP_ADVERTS)
                .ok_or(DataplaneError::Missing(MAP_ADVERTS))?,
        )
        .map_err(map_err(MAP_ADVERTS))?;
        let peer_adverts = RingBuf::try_from(
            ebpf.take_map(MAP_PEER_ADVERTS)
                .ok_or(DataplaneError::Missing(MAP_PEER_ADVERTS))?,
        )
        .map_err(map_err(MAP_PEER_ADVERTS))?;
        let known_peers = HashMap::try_from(
            ebpf.take_map(MAP_KNOWN_PEERS)
                .ok_or(DataplaneError::Missing(MAP_KNOWN_PEERS))?,
        )
        .map_err(map_err(MAP_KNOWN_PEERS))?;
        let drain = HashMap::try_from(
            ebpf.take_map(MAP_DRAIN)
                .ok_or(DataplaneError::Missing(MAP_DRAIN))?,
        )
        .map_err(map_err(MAP_DRAIN))?;
        let drain_active = Array::try_from(
            ebpf.take_map(MAP_DRAIN_ACTIVE)
                .ok_or(DataplaneError::Missing(MAP_DRAIN_ACTIVE))?,
        )
        .map_err(map_err(MAP_DRAIN_ACTIVE))?;
        let drain_stats = PerCpuArray::try_from(
            ebpf.take_map(MAP_DRAIN_STATS)
                .ok_or(DataplaneError::Missing(MAP_DRAIN_STATS))?,
        )
        .map_err(map_err(MAP_DRAIN_STATS))?;
        let peer_macs = HashMap::try_from(
            ebpf.take_map(MAP_PEER_MACS)
                .ok_or(DataplaneError::Missing(MAP_PEER_MACS))?,
        )
        .map_err(map_err(MAP_PEER_MACS))?;
        let group_peers = HashMap::try_from(
            ebpf.take_map(MAP_GROUP_PEERS)
                .ok_or(DataplaneError::Missing(MAP_GROUP_PEERS))?,
        )
        .map_err(map_err(MAP_GROUP_PEERS))?;
        let mut dp = Dataplane {
            ebpf,
            pin_dir: pin_dir.to_owned(),
            vip_owner,
            vhids,
            stats,
            adverts: Some(adverts),
            peer_adverts: Some(peer_adverts),
            known_peers,
            drain,
            drain_active,
            drain_stats,
            peer_macs,
            group_peers,
            attached: Vec::new(),
        };
        // Forwarding is decided again by this daemon's groups: an adopted entry (a daemon
        // killed while forwarding) must not outlive its decision.
        dp.clear_forwards()?;
        Ok(dp)
    }

    /// Attaches the ingress program as `prefer` says (native XDP falls back to generic when
    /// the driver refuses it) and the TC egress program to `ifname`, replacing in place the
    /// programs of an earlier vipd; a hook of an earlier vipd that is not the one chosen
    /// now is removed once the new one is attached, so no frame goes unchecked.
    pub fn attach(&mut self, ifname: &str, prefer: XdpPreference) -> Result<Attachment> {
        let ifindex = ifindex(ifname)?;
        let prefer = match prefer {
            XdpPreference::Auto => auto_mode(ifname),
            p => p,
        };
        let old_xdp = xdp_attached(ifindex)?;
        if let Some((id, _)) = old_xdp {
            vipd_program(ifindex, id)?;
        }
        let old_tc = tc_program(ifindex, TcAttachType::Ingress)?;
        let adopted = old_xdp.is_some() || old_tc.is_some();
        let mode = if prefer == XdpPreference::Tc {
            self.attach_tc(ifname, TC_INGRESS_PROGRAM, TcAttachType::Ingress)?;
            if let Some((_, attached)) = old_xdp {
                set_xdp(ifindex, -1, xdp_flags(attached))
                    .map_err(link_err(format!("detaching XDP from {ifname}")))?;
            }
            AttachMode::Tc
        } else {
            let mode = self.attach_xdp(ifname, ifindex, prefer, old_xdp)?;
            if old_tc.is_some() {
                detach_tc(ifname, TcAttachType::Ingress);
            }
            mode
        };
        self.attach_tc(ifname, TC_EGRESS_PROGRAM, TcAttachType::Egress)?;
        self.attached.push((ifname.to_owned(), ifindex));
        Ok(Attachment {
            ifindex,
            mode,
            adopted,
        })
    }

    fn program_fd(&self, name: &'static str) -> Result<std::os::fd::RawFd> {
        let program = self
            .ebpf
            .program(name)
            .ok_or(DataplaneError::Missing(name))?;
        Ok(program.fd().map_err(prog_err(name))?.as_fd().as_raw_fd())
    }

    fn attach_xdp(
        &mut self,
        ifname: &str,
        ifindex: u32,
        prefer: XdpPreference,
        old: Option<(u32, XdpAttached)>,
    ) -> Result<AttachMode> {
        let fd = self.program_fd(XDP_PROGRAM)?;
        let xdp_err = |e: std::io::Error| DataplaneError::Link {
            what: format!("attaching XDP to {ifname}"),
            detail: e.to_string(),
        };
        if let Some((_, attached)) = old {
            // Replaced in the mode it runs in: changing mode would detach it first.
            set_xdp(ifindex, fd, xdp_flags(attached)).map_err(xdp_err)?;
            return Ok(match attached {
                XdpAttached::SocketBuffer => AttachMode::Generic,
                _ => AttachMode::Native,
            });
        }
        if prefer == XdpPreference::Generic {
            set_xdp(ifindex, fd, XDP_FLAGS_SKB_MODE).map_err(xdp_err)?;
            return Ok(AttachMode::Generic);
        }
        match set_xdp(ifindex, fd, XDP_FLAGS_DRV_MODE) {
            Ok(()) => Ok(AttachMode::Native),
            Err(native) => {
                tracing::warn!(
                    interface = ifname,
                    error = %native,
                    "native XDP refused, attaching in generic (skb) mode"
                );
                set_xdp(ifindex, fd, XDP_FLAGS_SKB_MODE).map_err(xdp_err)?;
                Ok(AttachMode::Generic)
            }
        }
    }

    fn attach_tc(
        &mut self,
        ifname: &str,
        program: &'static str,
        direction: TcAttachType,
    ) -> Result<()> {
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut(program)
            .ok_or(DataplaneError::Missing(program))?
            .try_into()
            .map_err(prog_err(program))?;
        if let Err(e) = tc::qdisc_add_clsact(ifname) {
            tracing::debug!(interface = ifname, error = %e, "clsact qdisc not added (exists)");
        }
        let options = TcAttachOptions::Netlink(NlOptions {
            priority: TC_PRIORITY,
            handle: TC_HANDLE,
            ..NlOptions::default()
        });
        let id = match prog.attach_with_options(ifname, direction, options) {
            Ok(id) => id,
            Err(_) => {
                // An earlier vipd's filter is there: replace its program in place.
                let old =
                    SchedClassifierLink::attached(ifname, direction, TC_PRIORITY, TC_HANDLE, None)
                        .map_err(link_err(format!("finding the TC filter on {ifname}")))?;
                prog.attach_to_link(old)
                    .map_err(prog_err(format!("replacing the TC program on {ifname}")))?
            }
        };
        // The filter belongs to the kernel from now on: it stays when vipd dies.
        let link = prog.take_link(id).map_err(prog_err("taking the TC link"))?;
        std::mem::forget(link);
        Ok(())
    }

    /// Writes the ownership lease of `vip` on `ifindex`.
    pub fn set_owner(&mut self, ifindex: u32, vip: Ipv4Addr, owner: VipOwner) -> Result<()> {
        let key = VipKey {
            ifindex,
            addr: u32::from_ne_bytes(vip.octets()),
        };
        self.vip_owner
            .insert(key, owner, 0)
            .map_err(map_err(format!("setting the owner of {vip}")))
    }

    /// The ownership lease of `vip` on `ifindex`, if vipd manages it.
    pub fn owner(&self, ifindex: u32, vip: Ipv4Addr) -> Option<VipOwner> {
        let key = VipKey {
            ifindex,
            addr: u32::from_ne_bytes(vip.octets()),
        };
        self.vip_owner.get(&key, 0).ok()
    }

    /// Forwards the TCP segments for `vip` on `ifindex` that no socket of this node owns to
    /// `target` (see `DRAIN`); `None` stops it.
    pub fn set_forward(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        target: Option<DrainTarget>,
    ) -> Result<()> {
        let key = VipKey {
            ifindex,
            addr: u32::from_ne_bytes(vip.octets()),
        };
        match target {
            Some(t) => self
                .drain
                .insert(key, t, 0)
                .map_err(map_err(format!("forwarding {vip}")))?,
            None => match self.drain.remove(&key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(format!("stopping forwarding {vip}"))(e)),
            },
        }
        self.update_drain_active()
    }

    /// Segments from `mac` on `ifindex` (a CARP peer's) are never forwarded.
    pub fn add_peer_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<()> {
        let key = PeerMacKey {
            ifindex,
            mac,
            _pad: [0; 2],
        };
        self.peer_macs
            .insert(key, 1, 0)
            .map_err(map_err("adding a peer MAC"))
    }

    /// The forwarding entries: (ifindex, VIP, target).
    pub fn forwards(&self) -> Vec<(u32, Ipv4Addr, DrainTarget)> {
        self.drain
            .iter()
            .filter_map(|e| e.ok())
            .map(|(k, v)| (k.ifindex, Ipv4Addr::from(k.addr.to_ne_bytes()), v))
            .collect()
    }

    /// Removes every forwarding entry.
    pub fn clear_forwards(&mut self) -> Result<()> {
        let keys: Vec<VipKey> = self.drain.keys().filter_map(|k| k.ok()).collect();
        for k in keys {
            let _ = self.drain.remove(&k);
        }
        self.update_drain_active()
    }

    /// `DRAIN_ACTIVE` holds the number of `DRAIN` entries: 0 keeps the programs from
    /// looking anything up.
    fn update_drain_active(&mut self) -> Result<()> {
        let n = self.drain.keys().filter(|k| k.is_ok()).count() as u32;
        self.drain_active
            .set(0, n, 0)
            .map_err(map_err("updating DRAIN_ACTIVE"))
    }

    /// The forwarding counters, summed over CPUs: (name, packets) in slot order.
    pub fn drain_counters(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::with_capacity(DRAIN_STAT_COUNT as usize);
        for stat in DrainStat::ALL {
            let per_cpu = self
                .drain_stats
                .get(&(stat as u32), 0)
                .map_err(map_err("reading DRAIN_STATS"))?;
            out.push((stat.name(), per_cpu.iter().sum()));
        }
        Ok(out)
    }

    /// Removes every ownership entry, group and forwarding entry for which `keep` is false
    /// (left over from an earlier configuration).
    pub fn retain(
        &mut self,
        keep_vip: impl Fn(u32, Ipv4Addr) -> bool,
        keep_group: impl Fn(u32, u8) -> bool,
    ) -> Result<()> {
        let stale: Vec<VipKey> = self
            .vip_owner
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !keep_vip(k.ifindex, Ipv4Addr::from(k.addr.to_ne_bytes())))
            .collect();
        for k in stale {
            self.vip_owner
                .remove(&k)
                .map_err(map_err("removing a stale VIP entry"))?;
        }
        let stale: Vec<VhidKey> = self
            .vhids
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !keep_group(k.ifindex, k.vhid as u8))
            .collect();
        for k in stale {
            self.vhids
                .remove(&k)
                .map_err(map_err("removing a stale group entry"))?;
        }
        self.remove_group_peers(|k| !keep_group(k.ifindex, k.vhid as u8))?;
        // A removed group forwards nothing any more.
        let stale: Vec<VipKey> = self
            .drain
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !keep_vip(k.ifindex, Ipv4Addr::from(k.addr.to_ne_bytes())))
            .collect();
        for k in &stale {
            let _ = self.drain.remove(k);
        }
        if !stale.is_empty() {
            self.update_drain_active()?;
        }
        Ok(())
    }

    /// Registers CARP group `vhid` on `ifindex` with what its advertisements must be
    /// ([`Reception`]): they now reach the daemon. What the program saw of it before is
    /// kept. A unicast group's peers are written before its entry says it is unicast, and
    /// peers no longer listed are removed after.
    pub fn add_group(&mut self, ifindex: u32, vhid: u8, rx: &Reception) -> Result<()> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        let peer_key = |a: Ipv4Addr| GroupPeerKey {
            ifindex,
            vhid: vhid as u32,
            addr: u32::from_ne_bytes(a.octets()),
        };
        for &peer in &rx.peers {
            self.group_peers
                .insert(peer_key(peer), 1, 0)
                .map_err(map_err(format!("adding peer {peer} of vhid {vhid}")))?;
        }
        let dst = u32::from_ne_bytes(rx.destination.octets());
        let mut flags = 0;
        if !rx.peers.is_empty() {
            flags |= GROUP_UNICAST;
        }
        if !rx.ttl_check {
            flags |= GROUP_ANY_TTL;
        }
        let seen = match self.vhids.get(&key, 0) {
            Ok(seen) => VhidSeen { dst, flags, ..seen },
            Err(_) => VhidSeen {
                dst,
                flags,
                ..VhidSeen::default()
            },
        };
        self.vhids
            .insert(key, seen, 0)
            .map_err(map_err(format!("registering vhid {vhid}")))?;
        let listed: Vec<GroupPeerKey> = rx.peers.iter().map(|&a| peer_key(a)).collect();
        self.remove_group_peers(|k| {
            k.ifindex == ifindex && k.vhid == key.vhid && !listed.contains(k)
        })
    }

    fn remove_group_peers(&mut self, stale: impl Fn(&GroupPeerKey) -> bool) -> Result<()> {
        let gone: Vec<GroupPeerKey> = self
            .group_peers
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| stale(k))
            .collect();
        for k in gone {
            self.group_peers
                .remove(&k)
                .map_err(map_err("removing a peer no longer configured"))?;
        }
        Ok(())
    }

    /// What the XDP program last saw of group `vhid` on `ifindex`.
    pub fn group_seen(&self, ifindex: u32, vhid: u8) -> Option<VhidSeen> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        self.vhids.get(&key, 0).ok()
    }

    /// The per-reason counters, summed over CPUs.
    pub fn counters(&self) -> Result<ReasonCounts> {
        let mut c = ReasonCounts::default();
        for (i, slot) in c.0.iter_mut().enumerate() {
            let per_cpu = self
                .stats
                .get(&(i as u32), 0)
                .map_err(map_err("reading STATS"))?;
            *slot = per_cpu.iter().sum();
        }
        Ok(c)
    }

    /// The advertisement ring buffer; the receive loop takes it once.
    pub fn take_adverts(&mut self) -> Option<RingBuf<MapData>> {
        self.adverts.take()
    }

    /// The ring buffer of advertisements from known peers; the receive loop takes it once.
    pub fn take_peer_adverts(&mut self) -> Option<RingBuf<MapData>> {
        self.peer_adverts.take()
    }

    /// From now on, advertisements from `addr` on `ifindex` take the known peers' ring.
    pub fn add_known_peer(&mut self, ifindex: u32, addr: Ipv4Addr) -> Result<()> {
        let key = PeerKey {
            ifindex,
            addr: u32::from_ne_bytes(addr.octets()),
        };
        self.known_peers
            .insert(key, 1, 0)
            .map_err(map_err(format!("adding known peer {addr}")))
    }

    /// Runs the XDP program on `frame` with BPF_PROG_TEST_RUN as if it arrived on
    /// `ifindex`, `repeat` times. Returns the verdict and the mean run time in nanoseconds.
    pub fn test_run_xdp(&self, frame: &[u8], ifindex: u32, repeat: u32) -> Result<(u32, u32)> {
        let xdp: &Xdp = self
            .ebpf
            .program(XDP_PROGRAM)
            .ok_or(DataplaneError::Missing("XDP program"))?
            .try_into()
            .map_err(prog_err("XDP program"))?;
        let fd = xdp.fd().map_err(prog_err("XDP program fd"))?;
        test_run(fd.as_fd().as_raw_fd(), frame, ifindex, repeat)
    }

    /// Clean exit: detaches from every interface but those in `guard` and removes the
    /// pins. On a guarded interface the programs stay, so that the kernel never answers ARP
    /// for the VIPs left there (their entries say "not owned"); a later vipd adopts them.
    pub fn detach_all(mut self, guard: &[u32]) -> Result<()> {
        // Nothing is forwarded once the daemon is gone.
        let _ = self.clear_forwards();
        // Guarded interfaces keep dropping ARP for their VIPs, but no longer take CARP
        // advertisements off the wire: another CARP daemon may run there next.
        let groups: Vec<VhidKey> = self
            .vhids
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| guard.contains(&k.ifindex))
            .collect();
        for k in groups {
            let _ = self.vhids.remove(&k);
        }
        for (ifname, ifindex) in &self.attached {
            if guard.contains(ifindex) || nix::net::if_::if_indextoname(*ifindex).is_err() {
                // Guarded, or gone (and its programs with it).
                continue;
            }
            if let Some((_, attached)) = xdp_attached(*ifindex)? {
                set_xdp(*ifindex, -1, xdp_flags(attached))
                    .map_err(link_err(format!("detaching XDP from {ifname}")))?;
            }
            detach_tc(ifname, TcAttachType::Ingress);
            detach_tc(ifname, TcAttachType::Egress);
        }
        for map in OUR_MAPS {
            let _ = std::fs::remove_file(self.pin_dir.join(map));
        }
        let _ = std::fs::remove_dir(&self.pin_dir);
        Ok(())
    }
}

/// The maps vipd pins (by these names) when it adopts them.
const OUR_MAPS: [&str; 11] = [
    MAP_STATS,
    MAP_VIP_OWNER,
    MAP_VHIDS,
    MAP_ADVERTS,
    MAP_PEER_ADVERTS,
    MAP_KNOWN_PEERS,
    MAP_DRAIN,
    MAP_DRAIN_ACTIVE,
    MAP_DRAIN_STATS,
    MAP_PEER_MACS,
    MAP_GROUP_PEERS,
];

mod attach;
mod test_run;
#[cfg(test)]
mod tests;

use attach::*;
use test_run::*;
