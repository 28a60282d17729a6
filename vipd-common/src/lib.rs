//! The contract between vipd's XDP/TC programs and the daemon.
//!
//! Every map the kernel side uses is named here once, with what it is for, and every value
//! that crosses the boundary is a plain `#[repr(C)]` struct of fixed-size integers. Addresses
//! are stored as they appear on the wire (network byte order) so the kernel side never swaps.
#![no_std]

/// Name of the XDP program in the object file.
pub const XDP_PROGRAM: &str = "vipd_xdp";
/// Name of the TC ingress program in the object file: the XDP program's twin.
pub const TC_INGRESS_PROGRAM: &str = "vipd_tc_ingress";
/// Name of the TC egress program in the object file.
pub const TC_EGRESS_PROGRAM: &str = "vipd_tc_egress";

/// `STATS`: per-CPU array of packet counters, indexed by [`Reason`]. Every verdict either
/// program takes increments exactly one slot, so the sum of all slots is the number of
/// frames seen.
pub const MAP_STATS: &str = "STATS";
/// `VIP_OWNER`: hash map [`VipKey`] → [`VipOwner`]. One entry for every VIP vipd manages on
/// an interface; the XDP program drops ARP requests for a VIP whose entry says "not owned"
/// (or whose lease has run out) and the TC program drops ARP that would claim it.
pub const MAP_VIP_OWNER: &str = "VIP_OWNER";
/// `VHIDS`: hash map [`VhidKey`] → [`VhidSeen`]. One entry per CARP group configured on an
/// interface; the XDP program records when and from whom it last saw an advertisement.
pub const MAP_VHIDS: &str = "VHIDS";
/// `ADVERTS`: ring buffer of [`AdvertEvent`], one per CARP advertisement for a configured
/// group, carrying the kernel receive timestamp. It is the daemon's only receive path for
/// advertisements, so no socket queue can starve them.
pub const MAP_ADVERTS: &str = "ADVERTS";
/// Size of the `ADVERTS` ring buffer in bytes (a power of two, a multiple of the page size).
pub const ADVERTS_RING_BYTES: u32 = 256 * 1024;
/// `PEER_ADVERTS`: ring buffer of [`AdvertEvent`] like `ADVERTS`, for advertisements whose
/// source is in `KNOWN_PEERS`. A flood from other sources fills `ADVERTS`, never this one,
/// so it cannot crowd out the group's peers.
pub const MAP_PEER_ADVERTS: &str = "PEER_ADVERTS";
/// Size of the `PEER_ADVERTS` ring buffer in bytes.
pub const PEER_ADVERTS_RING_BYTES: u32 = 64 * 1024;
/// `KNOWN_PEERS`: LRU hash map [`PeerKey`] → `u32` (unused, 1). The daemon adds every
/// source whose advertisement it accepted (authentic, not replayed).
pub const MAP_KNOWN_PEERS: &str = "KNOWN_PEERS";
/// Maximum number of entries in `KNOWN_PEERS`.
pub const MAX_KNOWN_PEERS: u32 = 1024;
/// `DRAIN`: hash map [`VipKey`] → [`DrainTarget`]. An entry exists only on a MASTER that
/// took the VIP over gracefully from a previous master (its bow-out), for a limited time: the
/// ingress programs send the previous master the TCP segments for the VIP that belong to no
/// connection of this node (not a SYN, no socket found by `bpf_skc_lookup_tcp`), so that
/// its established connections survive the hand-off. Written and removed by the daemon
/// only; the program also checks the deadline, the ownership lease and the source MAC,
/// so a stale entry can neither outlive the lease nor send a frame back where it came
/// from.
pub const MAP_DRAIN: &str = "DRAIN";
/// `DRAIN_ACTIVE`: array of one `u32`, the number of entries in `DRAIN`. The programs look
/// nothing up for TCP segments while it is 0, so the normal path keeps its cost.
pub const MAP_DRAIN_ACTIVE: &str = "DRAIN_ACTIVE";
/// `DRAIN_STATS`: per-CPU array of packet counters, indexed by [`DrainStat`]: what became
/// of the TCP segments for a VIP with a `DRAIN` entry. (`STATS` counts them under
/// `pass_ipv4_other`.)
pub const MAP_DRAIN_STATS: &str = "DRAIN_STATS";
/// Maximum number of entries in `DRAIN`.
pub const MAX_DRAINS: u32 = 4096;
/// `PEER_MACS`: hash map [`PeerMacKey`] → `u32` (unused, 1). The MAC of every CARP peer whose
/// advertisement the daemon accepted on an interface. A TCP segment from one of them is
/// never forwarded: whatever a vipd node forwarded is served where it lands, so no segment
/// is forwarded twice, whatever the nodes' entries say.
pub const MAP_PEER_MACS: &str = "PEER_MACS";
/// Maximum number of entries in `PEER_MACS`.
pub const MAX_PEER_MACS: u32 = 1024;
/// `GROUP_PEERS`: hash map [`GroupPeerKey`] → `u32` (unused, 1). The configured peers of
/// every unicast group ([`GROUP_UNICAST`]): an advertisement for such a group from any other
/// source is dropped before it reaches a ring or ends a lease's grace. Written by the daemon
/// from the configuration only, never from what it receives.
pub const MAP_GROUP_PEERS: &str = "GROUP_PEERS";
/// Maximum number of entries in `GROUP_PEERS`.
pub const MAX_GROUP_PEERS: u32 = 4096;

/// Key of `GROUP_PEERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPeerKey {
    pub ifindex: u32,
    /// The CARP group, 1..=255.
    pub vhid: u32,
    /// The peer's IPv4 address, network byte order.
    pub addr: u32,
}

/// [`VhidSeen::flags`]: the group advertises to configured peers (unicast); only sources in
/// `GROUP_PEERS` are accepted, and `dst` is this node's own address.
pub const GROUP_UNICAST: u32 = 1;
/// [`VhidSeen::flags`]: accept advertisements whatever their TTL (a unicast peer behind a
/// router, `peer_ttl_check = false`). Without it only TTL 255 passes.
pub const GROUP_ANY_TTL: u32 = 2;

/// Key of `PEER_MACS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerMacKey {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// [`DrainTarget::flags`]: forward even though this node does not own the VIP. Set on a
/// node that just handed the VIP over gracefully, for a short tail: clients still send
/// to it until they have processed the new master's gratuitous ARP, and what belongs to
/// the previous master must not be reset in between.
pub const DRAIN_TAIL: u32 = 1;

/// What became of a TCP segment for a VIP with a `DRAIN` entry. Each value indexes one
/// slot of `DRAIN_STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainStat {
    /// Sent to the previous master (destination MAC rewritten, transmitted).
    Forwarded = 0,
    /// A socket of this node owns it (established, time-wait, request or valid syncookie).
    Local = 1,
    /// A SYN: new connections land on this node.
    Syn = 2,
    /// Sent by a CARP peer (the previous master among them): never forwarded (no loop, never
    /// twice), served here.
    FromPeer = 3,
    /// The entry is past its deadline or this node does not own the VIP now: served here.
    Inactive = 4,
    /// The frame could not be rewritten or transmitted: served here.
    Failed = 5,
}

/// Number of slots in `DRAIN_STATS`.
pub const DRAIN_STAT_COUNT: u32 = 6;

impl DrainStat {
    /// Every counter, in slot order.
    pub const ALL: [DrainStat; DRAIN_STAT_COUNT as usize] = [
        DrainStat::Forwarded,
        DrainStat::Local,
        DrainStat::Syn,
        DrainStat::FromPeer,
        DrainStat::Inactive,
        DrainStat::Failed,
    ];

    /// Short stable name, used by `vipd status` and its JSON.
    pub const fn name(self) -> &'static str {
        match self {
            DrainStat::Forwarded => "forwarded",
            DrainStat::Local => "local_socket",
            DrainStat::Syn => "syn",
            DrainStat::FromPeer => "from_peer",
            DrainStat::Inactive => "inactive",
            DrainStat::Failed => "failed",
        }
    }
}

/// Value of `DRAIN`: where the segments of connections this node has no socket for go.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainTarget {
    /// `bpf_ktime_get_ns()` after which nothing is forwarded any more.
    pub until_ns: u64,
    /// The previous master's MAC, taken from its bow-out frame (and checked against its
    /// earlier advertisements).
    pub peer_mac: [u8; 6],
    /// This interface's MAC: forwarded frames leave with it as their source, so that
    /// bridges never learn the client's MAC on this node's port.
    pub own_mac: [u8; 6],
    /// The previous master's IPv4 address, network byte order (for status and checks).
    pub peer_addr: u32,
    /// The CARP group the VIP belongs to.
    pub vhid: u32,
    /// [`DRAIN_TAIL`] or 0.
    pub flags: u32,
}

/// Maximum number of entries in `VIP_OWNER`.
pub const MAX_VIPS: u32 = 4096;
/// Maximum number of entries in `VHIDS` (255 groups on each of several interfaces).
pub const MAX_GROUPS: u32 = 2048;

/// IP protocol number shared by CARP and VRRP.
pub const IPPROTO_CARP: u8 = 112;
/// Length of a CARP advertisement after the IPv4 header.
pub const CARP_LEN: usize = 36;
/// An IPv4 header without options: CARP senders (ucarp, OpenBSD, vipd) never use any.
pub const IPV4_HLEN: usize = 20;
/// The only TTL a valid CARP advertisement carries.
pub const CARP_TTL: u8 = 255;
/// First byte of a CARP advertisement: version 2, type 1 (advertisement).
pub const CARP_VERSION_TYPE: u8 = 0x21;

/// Why a frame was passed or dropped. Each value indexes one slot of `STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// XDP: an ARP request for an address vipd does not manage.
    PassArpRequest = 0,
    /// XDP: an ARP request for a VIP this node owns.
    PassArpOwnedVip = 1,
    /// XDP: dropped an ARP request for a VIP this node does not own (or whose lease expired).
    DropArpNotOwned = 2,
    /// XDP: ARP that is not a request (replies, other opcodes).
    PassArpOther = 3,
    /// XDP: a CARP advertisement for a configured group, handed to the daemon.
    PassCarpToDaemon = 4,
    /// XDP: protocol 112 that is not a CARP advertisement (e.g. VRRP).
    PassProto112NotCarp = 5,
    /// XDP: a CARP advertisement for a group not configured on this interface.
    PassCarpOtherVhid = 6,
    /// XDP: dropped a CARP advertisement for our group with TTL other than 255.
    DropCarpBadTtl = 7,
    /// XDP: dropped a CARP advertisement for our group; the ring buffer was full.
    DropCarpRingFull = 8,
    /// XDP: any other IPv4 packet.
    PassIpv4Other = 9,
    /// XDP: everything else (IPv6, other ethertypes).
    PassOther = 10,
    /// XDP: a frame too short for the header it announces.
    PassTruncated = 11,
    /// TC egress: ARP whose sender address is a VIP this node does not own, dropped.
    DropTxArpNotOwned = 12,
    /// TC egress: ARP claiming a VIP this node owns.
    PassTxArpOwnedVip = 13,
    /// TC egress: any other frame.
    PassTxOther = 14,
    /// XDP: dropped a fragment of protocol 112 (advertisements are never fragmented).
    DropCarpFragment = 15,
    /// XDP: dropped a CARP advertisement for our group sent to another destination.
    DropCarpBadDestination = 16,
    /// XDP: a CARP advertisement from a known peer, handed to the daemon on its own ring.
    PassCarpKnownPeer = 17,
    /// XDP: dropped a CARP advertisement from a known peer; its ring was full.
    DropCarpPeerRingFull = 18,
    /// XDP: dropped a CARP advertisement for a unicast group from a source that is not one
    /// of its configured peers.
    DropCarpNotPeer = 19,
}

/// Number of slots in `STATS`.
pub const REASON_COUNT: u32 = 20;

impl Reason {
    /// Every reason, in slot order.
    pub const ALL: [Reason; REASON_COUNT as usize] = [
        Reason::PassArpRequest,
        Reason::PassArpOwnedVip,
        Reason::DropArpNotOwned,
        Reason::PassArpOther,
        Reason::PassCarpToDaemon,
        Reason::PassProto112NotCarp,
        Reason::PassCarpOtherVhid,
        Reason::DropCarpBadTtl,
        Reason::DropCarpRingFull,
        Reason::PassIpv4Other,
        Reason::PassOther,
        Reason::PassTruncated,
        Reason::DropTxArpNotOwned,
        Reason::PassTxArpOwnedVip,
        Reason::PassTxOther,
        Reason::DropCarpFragment,
        Reason::DropCarpBadDestination,
        Reason::PassCarpKnownPeer,
        Reason::DropCarpPeerRingFull,
        Reason::DropCarpNotPeer,
    ];

    /// Short stable name, used by `vipd status` and its JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::PassArpRequest => "pass_arp_request",
            Reason::PassArpOwnedVip => "pass_arp_owned_vip",
            Reason::DropArpNotOwned => "drop_arp_not_owned",
            Reason::PassArpOther => "pass_arp_other",
            Reason::PassCarpToDaemon => "pass_carp_to_daemon",
            Reason::PassProto112NotCarp => "pass_proto112_not_carp",
            Reason::PassCarpOtherVhid => "pass_carp_other_vhid",
            Reason::DropCarpBadTtl => "drop_carp_bad_ttl",
            Reason::DropCarpRingFull => "drop_carp_ring_full",
            Reason::PassIpv4Other => "pass_ipv4_other",
            Reason::PassOther => "pass_other",
            Reason::PassTruncated => "pass_truncated",
            Reason::DropTxArpNotOwned => "drop_tx_arp_not_owned",
            Reason::PassTxArpOwnedVip => "pass_tx_arp_owned_vip",
            Reason::PassTxOther => "pass_tx_other",
            Reason::DropCarpFragment => "drop_carp_fragment",
            Reason::DropCarpBadDestination => "drop_carp_bad_destination",
            Reason::PassCarpKnownPeer => "pass_carp_known_peer",
            Reason::DropCarpPeerRingFull => "drop_carp_peer_ring_full",
            Reason::DropCarpNotPeer => "drop_carp_not_peer",
        }
    }
}

/// Key of `VIP_OWNER`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipKey {
    /// Interface the VIP lives on.
    pub ifindex: u32,
    /// The VIP, network byte order (as in the packet).
    pub addr: u32,
}

/// Value of `VIP_OWNER`: an ownership lease. Times are `bpf_ktime_get_ns()`
/// (CLOCK_MONOTONIC). All zero means "not owned".
///
/// The node owns the VIP until `firm_until_ns`, then until `grace_until_ns` only as long as
/// no other node has advertised the group (`VHIDS[ifindex, vhid].last_seen_ns`) since
/// `renewed_ns`. The daemon renews the lease with every advertisement it sends as MASTER:
/// a late renewal leaves no hole, and if the daemon dies the node stops answering as soon
/// as a peer that took over advertises, or at the end of the grace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipOwner {
    pub renewed_ns: u64,
    pub firm_until_ns: u64,
    pub grace_until_ns: u64,
    /// The CARP group whose advertisements end the grace.
    pub vhid: u32,
    pub _pad: u32,
}

impl VipOwner {
    pub const NOT_OWNED: VipOwner = VipOwner {
        renewed_ns: 0,
        firm_until_ns: 0,
        grace_until_ns: 0,
        vhid: 0,
        _pad: 0,
    };

    /// Whether the node owns the VIP at monotonic time `now_ns`, when the group was last
    /// advertised by another node at `peer_seen_ns` (0: never).
    #[inline(always)]
    pub const fn owned_at(&self, now_ns: u64, peer_seen_ns: u64) -> bool {
        if now_ns < self.firm_until_ns {
            return true;
        }
        now_ns < self.grace_until_ns && peer_seen_ns <= self.renewed_ns
    }
}

/// Key of `KNOWN_PEERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerKey {
    pub ifindex: u32,
    /// The peer's IPv4 source address, network byte order.
    pub addr: u32,
}

/// Key of `VHIDS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VhidKey {
    pub ifindex: u32,
    /// The CARP group, 1..=255 (u32 to keep the struct free of padding).
    pub vhid: u32,
}

/// Value of `VHIDS`: where the group's advertisements must go (set by the daemon) and what
/// the XDP program last saw of them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VhidSeen {
    /// `bpf_ktime_get_ns()` of the last advertisement for this group that passed the
    /// XDP checks.
    pub last_seen_ns: u64,
    /// IPv4 source of that advertisement, network byte order.
    pub last_src: u32,
    /// Advertisements seen for this group (wraps).
    pub count: u32,
    /// The group's advertisement destination (multicast group or broadcast; for a unicast
    /// group this node's own address), network byte order: advertisements sent elsewhere
    /// are dropped before they reach the ring.
    pub dst: u32,
    /// [`GROUP_UNICAST`] and [`GROUP_ANY_TTL`], set by the daemon.
    pub flags: u32,
}

/// Length of an advertisement's IPv4 packet: a header without options and the CARP bytes.
pub const ADVERT_PACKET_LEN: usize = IPV4_HLEN + CARP_LEN;

/// One record of `ADVERTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// `bpf_ktime_get_ns()` when the XDP program saw the frame.
    pub rx_ns: u64,
    pub ifindex: u32,
    pub _pad: u32,
    /// The whole IPv4 packet, as received: the daemon decodes it with the same function
    /// its tests use.
    pub packet: [u8; ADVERT_PACKET_LEN],
    /// The frame's source MAC: where a graceful take-over forwards the previous master's
    /// connections.
    pub src_mac: [u8; 6],
    pub _pad2: [u8; 2],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C) structs of integers with no padding holes that
    // could leak uninitialised bytes, and every bit pattern is a valid value.
    unsafe impl aya::Pod for super::VipKey {}
    unsafe impl aya::Pod for super::VipOwner {}
    unsafe impl aya::Pod for super::VhidKey {}
    unsafe impl aya::Pod for super::VhidSeen {}
    unsafe impl aya::Pod for super::AdvertEvent {}
    unsafe impl aya::Pod for super::PeerKey {}
    unsafe impl aya::Pod for super::DrainTarget {}
    unsafe impl aya::Pod for super::PeerMacKey {}
    unsafe impl aya::Pod for super::GroupPeerKey {}
}

#[cfg(test)]
mod tests {
    use super::VipOwner;

    const LEASE: VipOwner = VipOwner {
        renewed_ns: 1_000,
        firm_until_ns: 4_000,
        grace_until_ns: 7_000,
        vhid: 1,
        _pad: 0,
    };

    #[test]
    fn a_lease_is_firm_then_holds_while_no_peer_advertised() {
        // Firm: whatever a peer does.
        assert!(LEASE.owned_at(3_999, 3_000));
        // Grace: held while the last peer advertisement predates the renewal.
        assert!(LEASE.owned_at(4_000, 0));
        assert!(LEASE.owned_at(6_999, 1_000));
        assert!(!LEASE.owned_at(4_000, 1_001));
        // Over.
        assert!(!LEASE.owned_at(7_000, 0));
        assert!(!VipOwner::NOT_OWNED.owned_at(0, 0));
        assert!(!VipOwner::NOT_OWNED.owned_at(5, 0));
    }
}
