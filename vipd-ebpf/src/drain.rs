//! Drain forwarding: after a graceful take-over, TCP segments of the previous master's
//! connections go back to it.
use crate::maps::*;
use crate::parse::*;
use aya_ebpf::{
    bindings::{
        BPF_F_CURRENT_NETNS, BPF_TCP_LISTEN, bpf_sock_tuple,
        bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 as SockTupleV4, tcphdr,
    },
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_sk_release, bpf_skc_lookup_tcp, bpf_tcp_check_syncookie},
};
use vipd_common::{DRAIN_TAIL, DrainStat, IPV4_HLEN, PeerMacKey, VipKey};

/// A TCP segment whose IPv4 header starts `off` bytes into the frame: whether it goes to
/// the previous master of its VIP, in which case its MACs are rewritten here. Only while
/// a drain is active, only for a VIP with a `DRAIN` entry before its deadline that this
/// node owns now, never for a frame the previous master sent, never for a SYN, and never
/// when a socket of this node (not a listener, or a listener that issued the segment's
/// syncookie) owns the segment. A function of its own (a BPF subprogram), so that its
/// stack does not add up with the advertisement path's.
#[inline(never)]
pub(crate) fn drain(f: &impl Frame, off: usize, ifindex: u32) -> bool {
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
pub(crate) fn syncookie(f: &impl Frame, off: usize, doff: u8, sk: *mut c_void) -> bool {
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
