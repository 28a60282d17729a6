//! vipd's kernel side.
//!
//! `vipd_xdp` (XDP, ingress): hands CARP advertisements for configured groups to the daemon
//! through a ring buffer, drops ARP requests for VIPs this node does not own, passes the rest.
//! `vipd_tc_egress` (TC, egress): drops ARP whose sender address is a VIP this node does not
//! own, so the node can never claim a VIP it has not won.
//! Every verdict increments one per-reason counter in `STATS`; nothing is dropped silently.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::bpf_ktime_get_ns,
    macros::{classifier, map, xdp},
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vipd_common::{
    ADVERT_PACKET_LEN, ADVERTS_RING_BYTES, AdvertEvent, CARP_TTL, CARP_VERSION_TYPE, IPPROTO_CARP,
    IPV4_HLEN, MAX_GROUPS, MAX_KNOWN_PEERS, MAX_VIPS, PEER_ADVERTS_RING_BYTES, PeerKey,
    REASON_COUNT, Reason, VhidKey, VhidSeen, VipKey, VipOwner,
};

// The maps, as documented in vipd-common. The programs hold them while attached; pinned by
// name when a daemon adopts them.
#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::pinned(REASON_COUNT, 0);
#[map(name = "VIP_OWNER")]
static VIP_OWNER: HashMap<VipKey, VipOwner> = HashMap::pinned(MAX_VIPS, 0);
#[map(name = "VHIDS")]
static VHIDS: HashMap<VhidKey, VhidSeen> = HashMap::pinned(MAX_GROUPS, 0);
#[map(name = "ADVERTS")]
static ADVERTS: RingBuf = RingBuf::pinned(ADVERTS_RING_BYTES, 0);
#[map(name = "PEER_ADVERTS")]
static PEER_ADVERTS: RingBuf = RingBuf::pinned(PEER_ADVERTS_RING_BYTES, 0);
#[map(name = "KNOWN_PEERS")]
static KNOWN_PEERS: LruHashMap<PeerKey, u32> = LruHashMap::pinned(MAX_KNOWN_PEERS, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ARP_LEN: usize = 28;
const ARPOP_REQUEST: u16 = 1;
/// Offsets inside the ARP payload (Ethernet/IPv4 ARP only).
const ARP_OP: usize = 6;
const ARP_SPA: usize = 14;
const ARP_TPA: usize = 24;
/// The More Fragments flag and fragment offset bits of the IPv4 header.
const IP_FRAGMENT_BITS: u16 = 0x3fff;

#[inline(always)]
fn count(reason: Reason) {
    if let Some(slot) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// Bounds-checked pointer to `len` bytes at `off` in the XDP frame.
#[inline(always)]
fn xdp_ptr(ctx: &XdpContext, off: usize, len: usize) -> Option<*const u8> {
    let start = ctx.data();
    if start + off + len > ctx.data_end() {
        return None;
    }
    Some((start + off) as *const u8)
}

#[inline(always)]
fn be16(p: *const u8) -> u16 {
    // SAFETY: callers pass pointers that were bounds-checked by xdp_ptr.
    unsafe { u16::from_be_bytes([*p, *p.add(1)]) }
}

#[inline(always)]
fn raw32(p: *const u8) -> u32 {
    // SAFETY: as for be16; the value keeps network byte order.
    unsafe { u32::from_ne_bytes([*p, *p.add(1), *p.add(2), *p.add(3)]) }
}

/// Whether this node may claim `addr` on `ifindex` now: `None` when vipd does not manage it.
#[inline(always)]
fn ownership(ifindex: u32, addr: u32) -> Option<bool> {
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

#[xdp(frags)]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    let (action, reason) = classify(&ctx);
    count(reason);
    action
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> (u32, Reason) {
    const PASS: u32 = xdp_action::XDP_PASS;
    let Some(eth) = xdp_ptr(ctx, 0, ETH_HLEN) else {
        return (PASS, Reason::PassTruncated);
    };
    // SAFETY: ingress_ifindex is a field of the context the kernel hands us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // SAFETY: eth spans 14 checked bytes.
    match be16(unsafe { eth.add(12) }) {
        ETH_P_ARP => classify_arp(ctx, ifindex),
        ETH_P_IP => classify_ipv4(ctx, ifindex),
        _ => (PASS, Reason::PassOther),
    }
}

#[inline(always)]
fn classify_arp(ctx: &XdpContext, ifindex: u32) -> (u32, Reason) {
    const PASS: u32 = xdp_action::XDP_PASS;
    let Some(arp) = xdp_ptr(ctx, ETH_HLEN, ARP_LEN) else {
        return (PASS, Reason::PassTruncated);
    };
    // SAFETY: arp spans 28 checked bytes.
    let (op, tpa) = unsafe { (be16(arp.add(ARP_OP)), raw32(arp.add(ARP_TPA))) };
    if op != ARPOP_REQUEST {
        return (PASS, Reason::PassArpOther);
    }
    match ownership(ifindex, tpa) {
        None => (PASS, Reason::PassArpRequest),
        Some(true) => (PASS, Reason::PassArpOwnedVip),
        Some(false) => (xdp_action::XDP_DROP, Reason::DropArpNotOwned),
    }
}

#[inline(always)]
fn classify_ipv4(ctx: &XdpContext, ifindex: u32) -> (u32, Reason) {
    const PASS: u32 = xdp_action::XDP_PASS;
    let Some(ip) = xdp_ptr(ctx, ETH_HLEN, IPV4_HLEN) else {
        return (PASS, Reason::PassTruncated);
    };
    // SAFETY: ip spans 20 checked bytes.
    let (vihl, total_len, frag, ttl, proto) = unsafe {
        (
            *ip,
            be16(ip.add(2)),
            be16(ip.add(6)),
            *ip.add(8),
            *ip.add(9),
        )
    };
    if proto != IPPROTO_CARP {
        return (PASS, Reason::PassIpv4Other);
    }
    if frag & IP_FRAGMENT_BITS != 0 {
        return (xdp_action::XDP_DROP, Reason::DropCarpFragment);
    }
    // CARP senders (ucarp, OpenBSD, vipd) never use IP options.
    if vihl != 0x45 || total_len as usize != ADVERT_PACKET_LEN {
        return (PASS, Reason::PassProto112NotCarp);
    }
    let Some(packet) = xdp_ptr(ctx, ETH_HLEN, ADVERT_PACKET_LEN) else {
        return (PASS, Reason::PassTruncated);
    };
    // SAFETY: packet spans 56 checked bytes; the CARP bytes start after the IPv4 header.
    let carp = unsafe { packet.add(IPV4_HLEN) };
    // SAFETY: as above.
    let (vt, vhid, authlen) = unsafe { (*carp, *carp.add(1), *carp.add(3)) };
    if vt != CARP_VERSION_TYPE || authlen != 7 {
        return (PASS, Reason::PassProto112NotCarp);
    }
    let key = VhidKey {
        ifindex,
        vhid: vhid as u32,
    };
    let Some(seen) = VHIDS.get_ptr_mut(key) else {
        return (PASS, Reason::PassCarpOtherVhid);
    };
    if ttl != CARP_TTL {
        return (xdp_action::XDP_DROP, Reason::DropCarpBadTtl);
    }
    // SAFETY: ip spans 20 checked bytes; seen points into the map value.
    let (src, dst) = unsafe { (raw32(ip.add(12)), raw32(ip.add(16))) };
    if dst != unsafe { (*seen).dst } {
        return (xdp_action::XDP_DROP, Reason::DropCarpBadDestination);
    }
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: seen points into the map value; racing CPUs only lose a count.
    unsafe {
        (*seen).last_seen_ns = now;
        (*seen).last_src = src;
        (*seen).count = (*seen).count.wrapping_add(1);
    }
    // Known peers have a ring of their own: a flood from other sources cannot fill it.
    let known = KNOWN_PEERS
        .get_ptr(PeerKey { ifindex, addr: src })
        .is_some();
    let (ring, passed, full) = if known {
        (
            &PEER_ADVERTS,
            Reason::PassCarpKnownPeer,
            Reason::DropCarpPeerRingFull,
        )
    } else {
        (&ADVERTS, Reason::PassCarpToDaemon, Reason::DropCarpRingFull)
    };
    let Some(mut entry) = ring.reserve::<AdvertEvent>(0) else {
        return (xdp_action::XDP_DROP, full);
    };
    let mut bytes = [0u8; ADVERT_PACKET_LEN];
    let mut i = 0;
    while i < ADVERT_PACKET_LEN {
        // SAFETY: i < 56 and packet spans 56 checked bytes.
        bytes[i] = unsafe { *packet.add(i) };
        i += 1;
    }
    entry.write(AdvertEvent {
        rx_ns: now,
        ifindex,
        _pad: 0,
        packet: bytes,
    });
    entry.submit(0);
    (PASS, passed)
}

#[classifier]
pub fn vipd_tc_egress(ctx: TcContext) -> i32 {
    let (action, reason) = classify_egress(&ctx);
    count(reason);
    action
}

#[inline(always)]
fn classify_egress(ctx: &TcContext) -> (i32, Reason) {
    let Ok(proto) = ctx.load::<[u8; 2]>(12) else {
        return (TC_ACT_OK, Reason::PassTxOther);
    };
    if u16::from_be_bytes(proto) != ETH_P_ARP {
        return (TC_ACT_OK, Reason::PassTxOther);
    }
    let Ok(spa) = ctx.load::<u32>(ETH_HLEN + ARP_SPA) else {
        return (TC_ACT_OK, Reason::PassTxOther);
    };
    // SAFETY: ifindex is a field of the skb the kernel hands us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    match ownership(ifindex, spa) {
        None => (TC_ACT_OK, Reason::PassTxOther),
        Some(true) => (TC_ACT_OK, Reason::PassTxArpOwnedVip),
        Some(false) => (TC_ACT_SHOT, Reason::DropTxArpNotOwned),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
