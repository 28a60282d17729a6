//! Advertisement intake: CARP advertisements of configured groups checked and handed to
//! the daemon through a ring buffer, known peers first; other IPv4 passes. A unicast
//! group's advertisements count only from its configured peers.
use crate::Verdict;
use crate::drain::drain;
use crate::maps::*;
use crate::parse::*;
use aya_ebpf::helpers::bpf_ktime_get_ns;
use vipd_common::{
    ADVERT_PACKET_LEN, AdvertEvent, CARP_TTL, CARP_VERSION_TYPE, GROUP_ANY_TTL, GROUP_UNICAST,
    GroupPeerKey, IPPROTO_CARP, IPV4_HLEN, PeerKey, Reason, VhidKey,
};

#[inline(always)]
pub(crate) fn classify_ipv4(f: &impl Frame, off: usize, ifindex: u32) -> (Verdict, Reason) {
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
    // SAFETY: seen points into the map value.
    let (group_dst, flags) = unsafe { ((*seen).dst, (*seen).flags) };
    if ip.ttl != CARP_TTL && flags & GROUP_ANY_TTL == 0 {
        return (Verdict::Drop, Reason::DropCarpBadTtl);
    }
    let (src, dst) = (raw32(ip.src), raw32(ip.dst));
    if dst != group_dst {
        return (Verdict::Drop, Reason::DropCarpBadDestination);
    }
    // Before anything is recorded: a forged source must not end a lease's grace.
    if flags & GROUP_UNICAST != 0 {
        let peer = GroupPeerKey {
            ifindex,
            vhid: key.vhid,
            addr: src,
        };
        if GROUP_PEERS.get_ptr(peer).is_none() {
            return (Verdict::Drop, Reason::DropCarpNotPeer);
        }
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
