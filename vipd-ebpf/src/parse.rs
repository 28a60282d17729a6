//! Frame parsing shared by every program: the header types, the one bounds-checked
//! `ptr_at`, and the walk past VLAN tags to the network header.
use aya_ebpf::{
    cty::c_void,
    programs::{TcContext, XdpContext},
};

/// The More Fragments flag and fragment offset bits of the IPv4 header.
pub(crate) const IP_FRAGMENT_BITS: u16 = 0x3fff;
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_ARP: u16 = 0x0806;
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
pub(crate) const ETH_P_8021AD: u16 = 0x88a8;
pub(crate) const ARPOP_REQUEST: u16 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_ACK: u8 = 0x10;
/// The ARP and IP headers are at most this far into a frame (two VLAN tags).
pub(crate) const MAX_L2_LEN: usize = size_of::<EthHdr>() + 2 * size_of::<VlanHdr>();

/// An Ethernet header.
#[repr(C)]
pub(crate) struct EthHdr {
    pub(crate) dst: [u8; 6],
    pub(crate) src: [u8; 6],
    pub(crate) proto: [u8; 2],
}

/// A VLAN tag: the tag control information and the ethertype that follows.
#[repr(C)]
pub(crate) struct VlanHdr {
    pub(crate) tci: [u8; 2],
    pub(crate) proto: [u8; 2],
}

/// An Ethernet/IPv4 ARP packet.
#[repr(C)]
pub(crate) struct ArpHdr {
    pub(crate) htype: [u8; 2],
    pub(crate) ptype: [u8; 2],
    pub(crate) hlen: u8,
    pub(crate) plen: u8,
    pub(crate) op: [u8; 2],
    pub(crate) sha: [u8; 6],
    pub(crate) spa: [u8; 4],
    pub(crate) tha: [u8; 6],
    pub(crate) tpa: [u8; 4],
}

/// An IPv4 header without options.
#[repr(C)]
pub(crate) struct Ipv4Hdr {
    pub(crate) version_ihl: u8,
    pub(crate) tos: u8,
    pub(crate) total_len: [u8; 2],
    pub(crate) id: [u8; 2],
    pub(crate) frag: [u8; 2],
    pub(crate) ttl: u8,
    pub(crate) proto: u8,
    pub(crate) check: [u8; 2],
    pub(crate) src: [u8; 4],
    pub(crate) dst: [u8; 4],
}

/// A TCP header without options.
#[repr(C)]
pub(crate) struct TcpHdr {
    pub(crate) sport: [u8; 2],
    pub(crate) dport: [u8; 2],
    pub(crate) seq: [u8; 4],
    pub(crate) ack: [u8; 4],
    pub(crate) doff: u8,
    pub(crate) flags: u8,
    pub(crate) window: [u8; 2],
    pub(crate) check: [u8; 2],
    pub(crate) urg: [u8; 2],
}

/// The fixed start of a CARP advertisement.
#[repr(C)]
pub(crate) struct CarpHdr {
    pub(crate) version_type: u8,
    pub(crate) vhid: u8,
    pub(crate) advskew: u8,
    pub(crate) authlen: u8,
}

/// A frame as either hook sees it: bytes between two addresses, and the context the
/// socket helpers take.
pub(crate) trait Frame {
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
pub(crate) fn ptr_at<T>(f: &impl Frame, off: usize) -> Option<*const T> {
    let start = f.start();
    if start + off + size_of::<T>() > f.end() {
        return None;
    }
    Some((start + off) as *const T)
}

/// Network-order bytes as the map keys hold them.
#[inline(always)]
pub(crate) fn raw32(b: [u8; 4]) -> u32 {
    u32::from_ne_bytes(b)
}

/// The ethertype after any VLAN tags and where its header starts.
#[inline(always)]
pub(crate) fn l3(f: &impl Frame) -> Option<(u16, usize)> {
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
