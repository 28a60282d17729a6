//! vipd's kernel side.
//!
//! `vipd_xdp` (XDP, ingress) and `vipd_tc_ingress` (TC, ingress) take the same decisions
//! with the same code, one for drivers where XDP costs nothing and one where a native XDP
//! program would cost throughput (veth, virtio-net): hand CARP advertisements for
//! configured groups to the daemon through a ring buffer, drop ARP requests for VIPs this
//! node does not own, pass the rest. `vipd_tc_egress` (TC, egress) drops ARP whose sender
//! address is a VIP this node does not own, so the node can never claim a VIP it has not
//! won. Frames may carry one or two VLAN tags (802.1Q, 802.1ad, priority tags).
//! Every verdict increments one per-reason counter in `STATS`; nothing is dropped silently.
//!
//! After a graceful take-over the daemon writes a `DRAIN` entry for each VIP: the ingress
//! programs then send the previous master the TCP segments for that VIP that belong to no
//! connection of this node (not a SYN, no socket found by `bpf_skc_lookup_tcp`), with the
//! destination MAC rewritten, out of the same interface (a redirect to itself). Nothing is looked up while `DRAIN_ACTIVE` is 0.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{
        BPF_F_CURRENT_NETNS, BPF_TCP_LISTEN, TC_ACT_OK, TC_ACT_SHOT, bpf_sock_tuple,
        bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 as SockTupleV4, tcphdr, xdp_action,
    },
    cty::c_void,
    helpers::{
        bpf_ktime_get_ns, bpf_redirect, bpf_sk_release, bpf_skc_lookup_tcp, bpf_tcp_check_syncookie,
    },
    macros::{classifier, map, xdp},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vipd_common::{
    ADVERT_PACKET_LEN, ADVERTS_RING_BYTES, AdvertEvent, CARP_TTL, CARP_VERSION_TYPE,
    DRAIN_STAT_COUNT, DRAIN_TAIL, DrainStat, DrainTarget, IPPROTO_CARP, IPV4_HLEN, MAX_DRAINS,
    MAX_GROUPS, MAX_KNOWN_PEERS, MAX_PEER_MACS, MAX_VIPS, PEER_ADVERTS_RING_BYTES, PeerKey,
    PeerMacKey, REASON_COUNT, Reason, VhidKey, VhidSeen, VipKey, VipOwner,
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
#[map(name = "DRAIN")]
static DRAIN: HashMap<VipKey, DrainTarget> = HashMap::pinned(MAX_DRAINS, 0);
#[map(name = "DRAIN_ACTIVE")]
static DRAIN_ACTIVE: Array<u32> = Array::pinned(1, 0);
#[map(name = "PEER_MACS")]
static PEER_MACS: HashMap<PeerMacKey, u32> = HashMap::pinned(MAX_PEER_MACS, 0);
#[map(name = "DRAIN_STATS")]
static DRAIN_STATS: PerCpuArray<u64> = PerCpuArray::pinned(DRAIN_STAT_COUNT, 0);

/// The More Fragments flag and fragment offset bits of the IPv4 header.
const IP_FRAGMENT_BITS: u16 = 0x3fff;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ARPOP_REQUEST: u16 = 1;
const IPPROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
/// The ARP and IP headers are at most this far into a frame (two VLAN tags).
const MAX_L2_LEN: usize = size_of::<EthHdr>() + 2 * size_of::<VlanHdr>();

/// An Ethernet header.
#[repr(C)]
struct EthHdr {
    dst: [u8; 6],
    src: [u8; 6],
    proto: [u8; 2],
}

/// A VLAN tag: the tag control information and the ethertype that follows.
#[repr(C)]
struct VlanHdr {
    tci: [u8; 2],
    proto: [u8; 2],
}

/// An Ethernet/IPv4 ARP packet.
#[repr(C)]
struct ArpHdr {
    htype: [u8; 2],
    ptype: [u8; 2],
    hlen: u8,
    plen: u8,
    op: [u8; 2],
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
}

/// An IPv4 header without options.
#[repr(C)]
struct Ipv4Hdr {
    version_ihl: u8,
    tos: u8,
    total_len: [u8; 2],
    id: [u8; 2],
    frag: [u8; 2],
    ttl: u8,
    proto: u8,
    check: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
}

/// A TCP header without options.
#[repr(C)]
struct TcpHdr {
    sport: [u8; 2],
    dport: [u8; 2],
    seq: [u8; 4],
    ack: [u8; 4],
    doff: u8,
    flags: u8,
    window: [u8; 2],
    check: [u8; 2],
    urg: [u8; 2],
}

/// The fixed start of a CARP advertisement.
#[repr(C)]
struct CarpHdr {
    version_type: u8,
    vhid: u8,
    advskew: u8,
    authlen: u8,
}

/// A frame as either hook sees it: bytes between two addresses, and the context the
/// socket helpers take.
trait Frame {
    fn start(&self) -> usize;
    fn end(&self) -> usize;
    fn raw(&self) -> *mut c_void;
}

impl Frame for XdpContext {
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn raw(&self) -> *mut c_void {
        self.ctx.cast()
    }
}

impl Frame for TcContext {
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn raw(&self) -> *mut c_void {
        self.skb.skb.cast()
    }
}

/// The one bounds check: a `T` at `off` bytes into the frame, or `None` past its end.
#[inline(always)]
fn ptr_at<T>(f: &impl Frame, off: usize) -> Option<*const T> {
    let start = f.start();
    if start + off + size_of::<T>() > f.end() {
        return None;
    }
    Some((start + off) as *const T)
}

/// Network-order bytes as the map keys hold them.
#[inline(always)]
fn raw32(b: [u8; 4]) -> u32 {
    u32::from_ne_bytes(b)
}

/// The ethertype after any VLAN tags and where its header starts.
#[inline(always)]
fn l3(f: &impl Frame) -> Option<(u16, usize)> {
    let eth: *const EthHdr = ptr_at(f, 0)?;
    // SAFETY: ptr_at checked the header lies in the frame.
    let mut proto = u16::from_be_bytes(unsafe { (*eth).proto });
    let mut off = size_of::<EthHdr>();
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let tag: *const VlanHdr = ptr_at(f, off)?;
        // SAFETY: as above.
        proto = u16::from_be_bytes(unsafe { (*tag).proto });
        off += size_of::<VlanHdr>();
    }
    Some((proto, off))
}

#[inline(always)]
fn count(reason: Reason) {
    if let Some(slot) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
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

/// What an ingress hook does with a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Drop,
    /// Send it back out of the interface it came in on (its MACs already rewritten).
    Forward,
}

#[xdp(frags)]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    // SAFETY: ingress_ifindex is a field of the context the kernel hands us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let (verdict, reason) = classify(&ctx, ifindex);
    count(reason);
    match verdict {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
        // Out of the interface it came in on, as a redirect rather than XDP_TX: on veth,
        // XDP_TX leaves the frame in the peer's ring until the peer's own XDP program (if
        // any) runs, while a redirect flushes it at the end of the poll, in every mode.
        // SAFETY: bpf_redirect has no preconditions.
        Verdict::Forward => unsafe { bpf_redirect(ifindex, 0) as u32 },
    }
}

#[classifier]
pub fn vipd_tc_ingress(ctx: TcContext) -> i32 {
    // ARP and advertisements fit in the linear part once pulled; a frame shorter than that
    // is classified as it is (and found truncated if it is).
    let _ = ctx.pull_data((MAX_L2_LEN + ADVERT_PACKET_LEN) as u32);
    // SAFETY: ifindex is a field of the skb the kernel hands us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let (verdict, reason) = classify(&ctx, ifindex);
    count(reason);
    match verdict {
        Verdict::Pass => TC_ACT_OK,
        Verdict::Drop => TC_ACT_SHOT,
        // SAFETY: bpf_redirect has no preconditions; out of the interface it came in on.
        Verdict::Forward => unsafe { bpf_redirect(ifindex, 0) as i32 },
    }
}

#[inline(always)]
fn classify(f: &impl Frame, ifindex: u32) -> (Verdict, Reason) {
    let Some((proto, off)) = l3(f) else {
        return (Verdict::Pass, Reason::PassTruncated);
    };
    match proto {
        ETH_P_ARP => classify_arp(f, off, ifindex),
        ETH_P_IP => classify_ipv4(f, off, ifindex),
        _ => (Verdict::Pass, Reason::PassOther),
    }
}

#[inline(always)]
fn classify_arp(f: &impl Frame, off: usize, ifindex: u32) -> (Verdict, Reason) {
    let Some(arp) = ptr_at::<ArpHdr>(f, off) else {
        return (Verdict::Pass, Reason::PassTruncated);
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let (op, tpa) = unsafe { (u16::from_be_bytes((*arp).op), raw32((*arp).tpa)) };
    if op != ARPOP_REQUEST {
        return (Verdict::Pass, Reason::PassArpOther);
    }
    match ownership(ifindex, tpa) {
        None => (Verdict::Pass, Reason::PassArpRequest),
        Some(true) => (Verdict::Pass, Reason::PassArpOwnedVip),
        Some(false) => (Verdict::Drop, Reason::DropArpNotOwned),
    }
}

#[inline(always)]
fn classify_ipv4(f: &impl Frame, off: usize, ifindex: u32) -> (Verdict, Reason) {
    let Some(ip) = ptr_at::<Ipv4Hdr>(f, off) else {
        return (Verdict::Pass, Reason::PassTruncated);
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let ip = unsafe { &*ip };
    if ip.proto == IPPROTO_TCP && drain_active() && drain(f, off, ifindex) {
        return (Verdict::Forward, Reason::PassIpv4Other);
    }
    if ip.proto != IPPROTO_CARP {
        return (Verdict::Pass, Reason::PassIpv4Other);
    }
    if u16::from_be_bytes(ip.frag) & IP_FRAGMENT_BITS != 0 {
        return (Verdict::Drop, Reason::DropCarpFragment);
    }
    // CARP senders (ucarp, OpenBSD, vipd) never use IP options.
    if ip.version_ihl != 0x45 || u16::from_be_bytes(ip.total_len) as usize != ADVERT_PACKET_LEN {
        return (Verdict::Pass, Reason::PassProto112NotCarp);
    }
    let Some(packet) = ptr_at::<[u8; ADVERT_PACKET_LEN]>(f, off) else {
        return (Verdict::Pass, Reason::PassTruncated);
    };
    let Some(carp) = ptr_at::<CarpHdr>(f, off + IPV4_HLEN) else {
        return (Verdict::Pass, Reason::PassTruncated);
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let carp = unsafe { &*carp };
    if carp.version_type != CARP_VERSION_TYPE || carp.authlen != 7 {
        return (Verdict::Pass, Reason::PassProto112NotCarp);
    }
    let key = VhidKey {
        ifindex,
        vhid: carp.vhid as u32,
    };
    let Some(seen) = VHIDS.get_ptr_mut(key) else {
        return (Verdict::Pass, Reason::PassCarpOtherVhid);
    };
    if ip.ttl != CARP_TTL {
        return (Verdict::Drop, Reason::DropCarpBadTtl);
    }
    let (src, dst) = (raw32(ip.src), raw32(ip.dst));
    // SAFETY: seen points into the map value.
    if dst != unsafe { (*seen).dst } {
        return (Verdict::Drop, Reason::DropCarpBadDestination);
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
        return (Verdict::Drop, full);
    };
    let packet = packet as *const u8;
    // l3 found the Ethernet header in the frame, so this always succeeds.
    let src_mac = match ptr_at::<EthHdr>(f, 0) {
        // SAFETY: ptr_at checked the header lies in the frame.
        Some(eth) => unsafe { (*eth).src },
        None => [0; 6],
    };
    // Written in place, field by field: a whole record on the stack would leave too little
    // of it for the forwarding path.
    let record = entry.as_mut_ptr();
    // SAFETY: the record is reserved ring memory of the right size; every field is written
    // before it is submitted; i < 56 and ptr_at checked the 56 bytes lie in the frame.
    unsafe {
        (*record).rx_ns = now;
        (*record).ifindex = ifindex;
        (*record)._pad = 0;
        (*record).src_mac = src_mac;
        (*record)._pad2 = [0; 2];
        let mut i = 0;
        while i < ADVERT_PACKET_LEN {
            (*record).packet[i] = *packet.add(i);
            i += 1;
        }
    }
    entry.submit(0);
    (Verdict::Pass, passed)
}

/// Whether some VIP has a `DRAIN` entry: the normal path's only cost, one array read.
#[inline(always)]
fn drain_active() -> bool {
    matches!(DRAIN_ACTIVE.get(0), Some(n) if *n != 0)
}

#[inline(always)]
fn drain_count(stat: DrainStat) {
    if let Some(slot) = DRAIN_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// A TCP segment whose IPv4 header starts `off` bytes into the frame: whether it goes to
/// the previous master of its VIP, in which case its MACs are rewritten here. Only while
/// a drain is active, only for a VIP with a `DRAIN` entry before its deadline that this
/// node owns now, never for a frame the previous master sent, never for a SYN, and never
/// when a socket of this node (not a listener, or a listener that issued the segment's
/// syncookie) owns the segment. A function of its own (a BPF subprogram), so that its
/// stack does not add up with the advertisement path's.
#[inline(never)]
fn drain(f: &impl Frame, off: usize, ifindex: u32) -> bool {
    let Some(ip) = ptr_at::<Ipv4Hdr>(f, off) else {
        return false;
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let (src, dst, version_ihl, frag) = unsafe {
        (
            raw32((*ip).src),
            raw32((*ip).dst),
            (*ip).version_ihl,
            (*ip).frag,
        )
    };
    let key = VipKey { ifindex, addr: dst };
    // SAFETY: read-only lookup of a plain value.
    let Some(target) = (unsafe { DRAIN.get(key) }) else {
        return false;
    };
    let target = *target;
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // Only a MASTER forwards (the lease says whether this node owns the VIP now), or a
    // node that has just handed it over, for its short tail.
    let tail = target.flags & DRAIN_TAIL != 0;
    if now >= target.until_ns || (!tail && ownership(ifindex, dst) != Some(true)) {
        drain_count(DrainStat::Inactive);
        return false;
    }
    let Some(eth) = ptr_at::<EthHdr>(f, 0) else {
        return false;
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let src_mac = unsafe { (*eth).src };
    let peer = PeerMacKey {
        ifindex,
        mac: src_mac,
        _pad: [0; 2],
    };
    // Whatever a CARP peer sends us is ours: a frame is never forwarded twice, nor back.
    // SAFETY: read-only lookup of a plain value.
    if src_mac == target.peer_mac || unsafe { PEER_MACS.get(peer) }.is_some() {
        drain_count(DrainStat::FromPeer);
        return false;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < IPV4_HLEN || u16::from_be_bytes(frag) & IP_FRAGMENT_BITS != 0
    {
        drain_count(DrainStat::Failed);
        return false;
    }
    let Some(tcp) = ptr_at::<TcpHdr>(f, off + ihl) else {
        drain_count(DrainStat::Failed);
        return false;
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let (sport, dport, flags, doff) =
        unsafe { ((*tcp).sport, (*tcp).dport, (*tcp).flags, (*tcp).doff >> 4) };
    if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 {
        drain_count(DrainStat::Syn);
        return false;
    }
    let mut tuple = bpf_sock_tuple {
        __bindgen_anon_1: aya_ebpf::bindings::bpf_sock_tuple__bindgen_ty_1 {
            ipv4: SockTupleV4 {
                saddr: src,
                daddr: dst,
                sport: u16::from_ne_bytes(sport),
                dport: u16::from_ne_bytes(dport),
            },
        },
    };
    // SAFETY: the context is the program's; the tuple lives on the stack for the call.
    let sk = unsafe {
        bpf_skc_lookup_tcp(
            f.raw(),
            &mut tuple,
            size_of::<SockTupleV4>() as u32,
            BPF_F_CURRENT_NETNS as u64,
            0,
        )
    };
    if !sk.is_null() {
        // SAFETY: a socket the lookup returned, released below on every path.
        let listening = unsafe { (*sk).state } == BPF_TCP_LISTEN;
        let ours = !listening
            || (flags & TCP_ACK != 0 && ihl == IPV4_HLEN && syncookie(f, off, doff, sk.cast()));
        // SAFETY: releases the reference the lookup took.
        unsafe { bpf_sk_release(sk.cast()) };
        if ours {
            drain_count(DrainStat::Local);
            return false;
        }
    }
    // No connection of ours: to the previous master, from our own MAC.
    let Some(eth) = ptr_at::<EthHdr>(f, 0) else {
        drain_count(DrainStat::Failed);
        return false;
    };
    let eth = eth as *mut EthHdr;
    // SAFETY: ptr_at checked the header lies in the frame; both hooks may write it.
    unsafe {
        (*eth).dst = target.peer_mac;
        (*eth).src = target.own_mac;
    }
    drain_count(DrainStat::Forwarded);
    true
}

/// Whether listener `sk` issued the syncookie this ACK carries (an IPv4 header without
/// options `off` bytes into the frame, a TCP header of `doff` words after it).
#[inline(always)]
fn syncookie(f: &impl Frame, off: usize, doff: u8, sk: *mut c_void) -> bool {
    let Some(iph) = ptr_at::<[u8; IPV4_HLEN]>(f, off) else {
        return false;
    };
    macro_rules! check {
        ($len:literal) => {{
            let Some(th) = ptr_at::<[u8; $len]>(f, off + IPV4_HLEN) else {
                return false;
            };
            // SAFETY: both headers lie in the frame, with the lengths given.
            unsafe {
                bpf_tcp_check_syncookie(
                    sk,
                    iph as *mut c_void,
                    IPV4_HLEN as u32,
                    th as *mut tcphdr,
                    $len,
                ) == 0
            }
        }};
    }
    match doff {
        5 => check!(20),
        6 => check!(24),
        7 => check!(28),
        8 => check!(32),
        9 => check!(36),
        10 => check!(40),
        _ => false,
    }
}

#[classifier]
pub fn vipd_tc_egress(ctx: TcContext) -> i32 {
    let (verdict, reason) = classify_egress(&ctx);
    count(reason);
    match verdict {
        Verdict::Pass => TC_ACT_OK,
        Verdict::Drop => TC_ACT_SHOT,
        // Egress never forwards.
        Verdict::Forward => TC_ACT_OK,
    }
}

#[inline(always)]
fn classify_egress(ctx: &TcContext) -> (Verdict, Reason) {
    let _ = ctx.pull_data((MAX_L2_LEN + size_of::<ArpHdr>()) as u32);
    let Some((ETH_P_ARP, off)) = l3(ctx) else {
        return (Verdict::Pass, Reason::PassTxOther);
    };
    let Some(arp) = ptr_at::<ArpHdr>(ctx, off) else {
        return (Verdict::Pass, Reason::PassTxOther);
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    let spa = raw32(unsafe { (*arp).spa });
    // SAFETY: ifindex is a field of the skb the kernel hands us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    match ownership(ifindex, spa) {
        None => (Verdict::Pass, Reason::PassTxOther),
        Some(true) => (Verdict::Pass, Reason::PassTxArpOwnedVip),
        Some(false) => (Verdict::Drop, Reason::DropTxArpNotOwned),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
