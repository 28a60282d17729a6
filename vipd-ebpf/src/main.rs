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
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::bpf_redirect,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use vipd_common::{ADVERT_PACKET_LEN, Reason};

mod advert;
mod arp;
mod drain;
mod maps;
mod parse;

use advert::classify_ipv4;
use arp::{classify_arp, classify_egress};
use maps::count;
use parse::{ETH_P_ARP, ETH_P_IP, Frame, MAX_L2_LEN, l3};

/// What an ingress hook does with a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
