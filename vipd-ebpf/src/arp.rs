//! ARP ownership: a request for a VIP this node does not own is dropped on ingress, and
//! ARP that claims such a VIP never leaves (egress).
use crate::Verdict;
use crate::maps::*;
use crate::parse::*;
use aya_ebpf::programs::TcContext;
use vipd_common::Reason;

#[inline(always)]
pub(crate) fn classify_arp(f: &impl Frame, off: usize, ifindex: u32) -> (Verdict, Reason) {
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
pub(crate) fn classify_egress(ctx: &TcContext) -> (Verdict, Reason) {
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
