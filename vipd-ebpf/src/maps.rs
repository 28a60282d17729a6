//! The maps, as documented in vipd-common, and the few reads and counts every program
//! makes of them. The programs hold them while attached; pinned by name when a daemon
//! adopts them.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use vipd_common::{
    ADVERTS_RING_BYTES, DRAIN_STAT_COUNT, DrainStat, DrainTarget, GroupPeerKey, MAX_DRAINS,
    MAX_GROUP_PEERS, MAX_GROUPS, MAX_KNOWN_PEERS, MAX_PEER_MACS, MAX_VIPS, PEER_ADVERTS_RING_BYTES,
    PeerKey, PeerMacKey, REASON_COUNT, Reason, VhidKey, VhidSeen, VipKey, VipOwner,
};

#[map(name = "STATS")]
pub(crate) static STATS: PerCpuArray<u64> = PerCpuArray::pinned(REASON_COUNT, 0);
#[map(name = "VIP_OWNER")]
pub(crate) static VIP_OWNER: HashMap<VipKey, VipOwner> = HashMap::pinned(MAX_VIPS, 0);
#[map(name = "VHIDS")]
pub(crate) static VHIDS: HashMap<VhidKey, VhidSeen> = HashMap::pinned(MAX_GROUPS, 0);
#[map(name = "ADVERTS")]
pub(crate) static ADVERTS: RingBuf = RingBuf::pinned(ADVERTS_RING_BYTES, 0);
#[map(name = "PEER_ADVERTS")]
pub(crate) static PEER_ADVERTS: RingBuf = RingBuf::pinned(PEER_ADVERTS_RING_BYTES, 0);
#[map(name = "KNOWN_PEERS")]
pub(crate) static KNOWN_PEERS: LruHashMap<PeerKey, u32> = LruHashMap::pinned(MAX_KNOWN_PEERS, 0);
#[map(name = "DRAIN")]
pub(crate) static DRAIN: HashMap<VipKey, DrainTarget> = HashMap::pinned(MAX_DRAINS, 0);
#[map(name = "DRAIN_ACTIVE")]
pub(crate) static DRAIN_ACTIVE: Array<u32> = Array::pinned(1, 0);
#[map(name = "PEER_MACS")]
pub(crate) static PEER_MACS: HashMap<PeerMacKey, u32> = HashMap::pinned(MAX_PEER_MACS, 0);
#[map(name = "GROUP_PEERS")]
pub(crate) static GROUP_PEERS: HashMap<GroupPeerKey, u32> = HashMap::pinned(MAX_GROUP_PEERS, 0);
#[map(name = "DRAIN_STATS")]
pub(crate) static DRAIN_STATS: PerCpuArray<u64> = PerCpuArray::pinned(DRAIN_STAT_COUNT, 0);

#[inline(always)]
pub(crate) fn count(reason: Reason) {
    if let Some(slot) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// Whether this node may claim `addr` on `ifindex` now: `None` when vipd does not manage it.
#[inline(always)]
pub(crate) fn ownership(ifindex: u32, addr: u32) -> Option<bool> {
    let key = VipKey { ifindex, addr };
    // SAFETY: read-only lookup of a plain value.
    let owner = unsafe { VIP_OWNER.get(key) }?;
    let group = VhidKey {
        ifindex,
        vhid: owner.vhid,
    };
    // SAFETY: read-only lookup of a plain value.
    let peer_seen_ns = unsafe { VHIDS.get(group) }.map_or(0, |s| s.last_seen_ns);
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    Some(owner.owned_at(unsafe { bpf_ktime_get_ns() }, peer_seen_ns))
}

/// Whether some VIP has a `DRAIN` entry: the normal path's only cost, one array read.
#[inline(always)]
pub(crate) fn drain_active() -> bool {
    matches!(DRAIN_ACTIVE.get(0), Some(n) if *n != 0)
}

#[inline(always)]
pub(crate) fn drain_count(stat: DrainStat) {
    if let Some(slot) = DRAIN_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}
