//! The kernel side of vipd as seen from user space: load the XDP and TC programs, attach them
//! to interfaces, flip VIP ownership, register CARP groups, read the per-reason counters.
//!
//! Links and maps are pinned under one directory of bpffs per daemon, so they outlive the
//! daemon: if it dies, the ownership leases in `VIP_OWNER` run out on their own and the node
//! stops answering ARP, and a restarted daemon adopts the links and maps without a flap.
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, tc};
use aya::{Ebpf, EbpfLoader};
use vipd_common::{
    MAP_ADVERTS, MAP_STATS, MAP_VHIDS, MAP_VIP_OWNER, REASON_COUNT, Reason, TC_EGRESS_PROGRAM,
    VhidKey, VhidSeen, VipKey, VipOwner, XDP_PROGRAM,
};

/// The XDP/TC object built by `cargo xtask build-ebpf`.
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

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns()`, used for leases.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
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

/// Which XDP mode to ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpPreference {
    /// Native (driver) mode, generic only if the driver refuses it.
    #[default]
    Native,
    /// Generic (skb) mode. On veth, native XDP turns off the peer's segmentation offload
    /// (the kernel's veth driver does so whenever an XDP program is attached), which costs
    /// bulk TCP throughput; generic mode leaves it on.
    Generic,
}

/// How the XDP program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode.
    Native,
    /// Generic (skb) mode: the driver refused native mode.
    Generic,
    /// An XDP link pinned by an earlier vipd was found and its program replaced atomically.
    Adopted,
}

/// Per-reason packet counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; REASON_COUNT as usize]);

impl Counters {
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
    attached: Vec<(String, u32)>,
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
        .unwrap_or(false)
}

/// Whether this process shares the mount namespace of init (not, under `ip netns exec`).
fn in_init_mount_ns() -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    ino("/proc/self/ns/mnt") == ino("/proc/1/ns/mnt")
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
    if !in_init_mount_ns() {
        tracing::warn!(
            "mounted bpffs on /sys/fs/bpf in a private mount namespace (ip netns exec?): \
             pinned links and maps will not outlive vipd, so a killed vipd cannot fail safe; \
             pass --bpffs-dir on a bpffs shared with the host"
        );
    }
    Ok(())
}

impl Dataplane {
    /// Loads the programs, reusing the maps pinned in `pin_dir` when an earlier vipd left
    /// them there.
    pub fn load(pin_dir: &Path) -> Result<Self> {
        ensure_bpffs(pin_dir)?;
        std::fs::create_dir_all(pin_dir).map_err(|source| DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source,
        })?;
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
        Ok(Dataplane {
            ebpf,
            pin_dir: pin_dir.to_owned(),
            vip_owner,
            vhids,
            stats,
            adverts: Some(adverts),
            attached: Vec::new(),
        })
    }

    fn link_pin(&self, kind: &str, ifname: &str) -> PathBuf {
        self.pin_dir.join(format!("link-{kind}-{ifname}"))
    }

    /// Attaches the XDP program (native mode unless generic is asked for; generic also when
    /// the driver refuses native) and the TC egress program to `ifname`, adopting links an
    /// earlier vipd pinned. Returns the ifindex and how XDP ended up attached.
    pub fn attach(&mut self, ifname: &str, prefer: XdpPreference) -> Result<(u32, AttachMode)> {
        let ifindex = ifindex(ifname)?;
        let mode = self.attach_xdp(ifname, ifindex, prefer)?;
        self.attach_tc(ifname)?;
        self.attached.push((ifname.to_owned(), ifindex));
        Ok((ifindex, mode))
    }

    fn attach_xdp(
        &mut self,
        ifname: &str,
        ifindex: u32,
        prefer: XdpPreference,
    ) -> Result<AttachMode> {
        let pin = self.link_pin("xdp", ifname);
        let xdp: &mut Xdp = self
            .ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(DataplaneError::Missing("XDP program"))?
            .try_into()
            .map_err(prog_err("XDP program"))?;
        let (id, mode) = match PinnedLink::from_pin(&pin) {
            Ok(old) => {
                let fd: FdLink = old.unpin().map_err(link_err("unpinning the XDP link"))?;
                let link = fd.try_into().map_err(link_err("adopting the XDP link"))?;
                let id = xdp
                    .attach_to_link(link)
                    .map_err(prog_err(format!("replacing the XDP program on {ifname}")))?;
                (id, AttachMode::Adopted)
            }
            Err(_) if prefer == XdpPreference::Generic => {
                let id = xdp
                    .attach_to_if_index(ifindex, XdpMode::Skb)
                    .map_err(prog_err(format!("attaching XDP to {ifname}")))?;
                (id, AttachMode::Generic)
            }
            Err(_) => match xdp.attach_to_if_index(ifindex, XdpMode::Driver) {
                Ok(id) => (id, AttachMode::Native),
                Err(native) => {
                    tracing::warn!(
                        interface = ifname,
                        error = %native,
                        "native XDP refused, attaching in generic (skb) mode"
                    );
                    let id = xdp
                        .attach_to_if_index(ifindex, XdpMode::Skb)
                        .map_err(prog_err(format!("attaching XDP to {ifname}")))?;
                    (id, AttachMode::Generic)
                }
            },
        };
        let link = xdp.take_link(id).map_err(prog_err("taking the XDP link"))?;
        let fd: FdLink = link
            .try_into()
            .map_err(link_err("the XDP link is not a bpf_link"))?;
        fd.pin(&pin).map_err(link_err("pinning the XDP link"))?;
        Ok(mode)
    }

    fn attach_tc(&mut self, ifname: &str) -> Result<()> {
        let pin = self.link_pin("tc", ifname);
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut(TC_EGRESS_PROGRAM)
            .ok_or(DataplaneError::Missing("TC program"))?
            .try_into()
            .map_err(prog_err("TC program"))?;
        let id = match PinnedLink::from_pin(&pin) {
            Ok(old) => {
                let fd: FdLink = old.unpin().map_err(link_err("unpinning the TC link"))?;
                let link = fd.try_into().map_err(link_err("adopting the TC link"))?;
                prog.attach_to_link(link)
                    .map_err(prog_err(format!("replacing the TC program on {ifname}")))?
            }
            Err(_) => {
                // Kernels before 6.6 attach through the clsact qdisc; TCX needs none.
                if let Err(e) = tc::qdisc_add_clsact(ifname) {
                    tracing::debug!(interface = ifname, error = %e, "clsact qdisc not added");
                }
                prog.attach(ifname, TcAttachType::Egress)
                    .map_err(prog_err(format!("attaching TC egress to {ifname}")))?
            }
        };
        let link = prog.take_link(id).map_err(prog_err("taking the TC link"))?;
        let fd: FdLink = link
            .try_into()
            .map_err(link_err("the TC link is not a bpf_link"))?;
        fd.pin(&pin).map_err(link_err("pinning the TC link"))?;
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

    /// Removes every ownership entry and group for which `keep` is false (left over from an
    /// earlier configuration).
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
        Ok(())
    }

    /// Registers CARP group `vhid` on `ifindex` with its advertisement destination: its
    /// advertisements now reach the daemon. What the program saw of it before is kept.
    pub fn add_group(&mut self, ifindex: u32, vhid: u8, dst: Ipv4Addr) -> Result<()> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        let dst = u32::from_ne_bytes(dst.octets());
        let seen = match self.vhids.get(&key, 0) {
            Ok(seen) if seen.dst == dst => return Ok(()),
            Ok(seen) => VhidSeen { dst, ..seen },
            Err(_) => VhidSeen {
                dst,
                ..VhidSeen::default()
            },
        };
        self.vhids
            .insert(key, seen, 0)
            .map_err(map_err(format!("registering vhid {vhid}")))
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
    pub fn counters(&self) -> Result<Counters> {
        let mut c = Counters::default();
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

    /// Clean exit: detaches from every interface and removes the pins, so nothing of vipd
    /// stays in the kernel.
    pub fn detach_all(self) -> Result<()> {
        for (ifname, _) in &self.attached {
            for kind in ["xdp", "tc"] {
                let pin = self.link_pin(kind, ifname);
                if let Ok(link) = PinnedLink::from_pin(&pin) {
                    // Unpinning drops the last reference once our fd closes: detached.
                    link.unpin().map_err(link_err("unpinning a link"))?;
                }
            }
        }
        for map in [MAP_STATS, MAP_VIP_OWNER, MAP_VHIDS, MAP_ADVERTS] {
            let _ = std::fs::remove_file(self.pin_dir.join(map));
        }
        let _ = std::fs::remove_dir(&self.pin_dir);
        Ok(())
    }
}

/// The kernel's `struct xdp_md`, as BPF_PROG_TEST_RUN takes it for the context.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// The BPF_PROG_TEST_RUN member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

fn test_run(prog_fd: i32, frame: &[u8], ifindex: u32, repeat: u32) -> Result<(u32, u32)> {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..Default::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ctx_size_in: std::mem::size_of::<XdpMd>() as u32,
        ctx_in: &ctx as *const XdpMd as u64,
        ..Default::default()
    };
    // SAFETY: attr points to a valid bpf_attr prefix whose pointers outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(DataplaneError::TestRun(std::io::Error::last_os_error()));
    }
    Ok((attr.retval, attr.duration))
}
