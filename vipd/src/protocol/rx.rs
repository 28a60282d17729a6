//! The one receive pass: every advertisement the XDP program hands over goes through
//! [`Receiver::receive`], which decodes it with [`carp::decode`] (the function the codec's
//! tests use), rejects replays, and counts each rejection under its own name in
//! [`RxStats`]. Logging is aggregated per interval so that no flood turns into a log flood.
use std::collections::{HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::GroupConfig;
use crate::protocol::carp::{self, Advert, CarpError, Coverage, Key};

/// How many authenticated counters a group remembers to recognise a replay (about an hour
/// of advertisements at one a second).
pub const REMEMBERED_COUNTERS: usize = 4096;
/// Rejections are logged at most once per this interval, as counts per reason.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why an advertisement was not fed to the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a valid, authentic advertisement for this group.
    Carp(CarpError),
    /// Sent from this node's own address.
    OwnAddress,
    /// A unicast group's advertisement from a source that is not one of its peers.
    NotPeer,
    /// Carries a counter this node sent: one of our advertisements, replayed.
    OwnCounter,
    /// Carries a counter this group has already accepted (from any source).
    Replayed,
}

/// Rejections of one group, one field per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxStats {
    pub accepted: u64,
    pub too_short: u64,
    pub bad_version: u64,
    pub bad_type: u64,
    pub vrrp: u64,
    pub bad_authlen: u64,
    pub bad_ttl: u64,
    pub not_carp: u64,
    pub bad_destination: u64,
    pub bad_checksum: u64,
    pub bad_ip_checksum: u64,
    pub unknown_vhid: u64,
    pub bad_hmac: u64,
    pub bad_ip_header: u64,
    pub ip_options: u64,
    pub bad_length: u64,
    pub fragment: u64,
    pub own_address: u64,
    /// Absent in the status of an older vipd.
    #[serde(default)]
    pub not_peer: u64,
    pub own_counter: u64,
    pub replayed: u64,
}

impl RxStats {
    /// The counter of one rejection reason. Every variant is listed: a new reason does not
    /// compile until it has its counter.
    fn slot(&mut self, r: Rejection) -> &mut u64 {
        match r {
            Rejection::Carp(e) => match e {
                CarpError::TooShort(_) => &mut self.too_short,
                CarpError::BadVersion(_) => &mut self.bad_version,
                CarpError::BadType(_) => &mut self.bad_type,
                CarpError::Vrrp => &mut self.vrrp,
                CarpError::BadAuthLen(_) => &mut self.bad_authlen,
                CarpError::BadTtl(_) => &mut self.bad_ttl,
                CarpError::NotCarp(_) => &mut self.not_carp,
                CarpError::BadDestination(_) => &mut self.bad_destination,
                CarpError::BadChecksum => &mut self.bad_checksum,
                CarpError::BadIpChecksum => &mut self.bad_ip_checksum,
                CarpError::UnknownVhid(_) => &mut self.unknown_vhid,
                CarpError::BadHmac => &mut self.bad_hmac,
                CarpError::BadIpHeader => &mut self.bad_ip_header,
                CarpError::IpOptions => &mut self.ip_options,
                CarpError::BadLength(_) => &mut self.bad_length,
                CarpError::Fragment => &mut self.fragment,
            },
            Rejection::OwnAddress => &mut self.own_address,
            Rejection::NotPeer => &mut self.not_peer,
            Rejection::OwnCounter => &mut self.own_counter,
            Rejection::Replayed => &mut self.replayed,
        }
    }

    pub fn count(&mut self, r: Rejection) {
        *self.slot(r) += 1;
    }

    /// (name, count) of every rejection reason, in a fixed order.
    pub fn rejections(&self) -> [(&'static str, u64); 20] {
        [
            ("too_short", self.too_short),
            ("bad_version", self.bad_version),
            ("bad_type", self.bad_type),
            ("vrrp", self.vrrp),
            ("bad_authlen", self.bad_authlen),
            ("bad_ttl", self.bad_ttl),
            ("not_carp", self.not_carp),
            ("bad_destination", self.bad_destination),
            ("bad_checksum", self.bad_checksum),
            ("bad_ip_checksum", self.bad_ip_checksum),
            ("unknown_vhid", self.unknown_vhid),
            ("bad_hmac", self.bad_hmac),
            ("bad_ip_header", self.bad_ip_header),
            ("ip_options", self.ip_options),
            ("bad_length", self.bad_length),
            ("fragment", self.fragment),
            ("own_address", self.own_address),
            ("not_peer", self.not_peer),
            ("own_counter", self.own_counter),
            ("replayed", self.replayed),
        ]
    }

    fn rejected(&self) -> u64 {
        self.rejections().iter().map(|(_, n)| n).sum()
    }
}

/// The counters a group has sent: after `start`, up to `last` (they grow by one per
/// advertisement from a random start, wrapping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SentCounters {
    pub start: u64,
    pub last: u64,
}

impl SentCounters {
    fn contains(&self, c: u64) -> bool {
        c.wrapping_sub(self.start).wrapping_sub(1) < self.last.wrapping_sub(self.start)
    }
}

/// The receive state of one group.
#[derive(Debug)]
pub struct Receiver {
    local_addr: Ipv4Addr,
    destination: Ipv4Addr,
    /// A unicast group's peers, the only sources accepted; empty: any source.
    peers: Vec<Ipv4Addr>,
    ttl_check: bool,
    vhid: u8,
    vips: Vec<Ipv4Addr>,
    key: Key,
    coverage: Coverage,
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    stats: RxStats,
    logged: RxStats,
    next_log: Option<Instant>,
    label: String,
}

impl Receiver {
    /// The receive state of group `g` on a node advertising from `local_addr`.
    pub fn new(label: String, g: &GroupConfig, local_addr: Ipv4Addr) -> Receiver {
        Receiver {
            local_addr,
            destination: g.receive_destination(local_addr),
            peers: g.peers.clone(),
            ttl_check: g.peer_ttl_check || !g.unicast(),
            vhid: g.vhid,
            vips: g.vips.iter().map(|v| v.addr).collect(),
            key: g.key.clone(),
            coverage: g.coverage,
            seen: HashSet::with_capacity(REMEMBERED_COUNTERS),
            order: VecDeque::with_capacity(REMEMBERED_COUNTERS),
            stats: RxStats::default(),
            logged: RxStats::default(),
            next_log: None,
            label,
        }
    }

    pub fn stats(&self) -> &RxStats {
        &self.stats
    }

    /// Checks one IPv4 packet received at `now`; `sent` are the counters this node sent.
    pub fn receive(
        &mut self,
        packet: &[u8],
        sent: SentCounters,
        now: Instant,
    ) -> Result<(Ipv4Addr, Advert), Rejection> {
        let result = self.check(packet, sent);
        match result {
            Ok(_) => self.stats.accepted += 1,
            Err(r) => {
                self.stats.count(r);
                let src = packet
                    .get(12..16)
                    .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
                self.log(now, src);
            }
        }
        result
    }

    fn check(
        &mut self,
        packet: &[u8],
        sent: SentCounters,
    ) -> Result<(Ipv4Addr, Advert), Rejection> {
        let (vips, key, coverage) = (&self.vips[..], &self.key, self.coverage);
        let vhid = self.vhid;
        let (src, _, bytes) = carp::parse_ipv4_ttl(packet, self.destination, self.ttl_check)
            .map_err(Rejection::Carp)?;
        // Before the HMAC: a flood from anywhere else costs no hashing.
        if !self.peers.is_empty() && !self.peers.contains(&src) {
            return Err(Rejection::NotPeer);
        }
        let advert =
            carp::decode_carp(bytes, src, |v| (v == vhid).then_some((vips, key, coverage)))
                .map_err(Rejection::Carp)?;
        if src == self.local_addr {
            return Err(Rejection::OwnAddress);
        }
        if sent.contains(advert.counter) {
            return Err(Rejection::OwnCounter);
        }
        if !self.seen.insert(advert.counter) {
            return Err(Rejection::Replayed);
        }
        self.order.push_back(advert.counter);
        if self.order.len() > REMEMBERED_COUNTERS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        Ok((src, advert))
    }

    /// At most one line per [`LOG_INTERVAL`], with what was rejected since the last one and
    /// the source of the rejection that triggered it.
    fn log(&mut self, now: Instant, src: Option<Ipv4Addr>) {
        if self.next_log.is_some_and(|t| now < t) {
            return;
        }
        self.next_log = Some(now + LOG_INTERVAL);
        let since: Vec<String> = self
            .stats
            .rejections()
            .iter()
            .zip(self.logged.rejections())
            .filter(|((_, n), (_, before))| n > before)
            .map(|((name, n), (_, before))| format!("{name}={}", n - before))
            .collect();
        warn!(group = %self.label, total = self.stats.rejected(), since_last = %since.join(" "),
            source = ?src, "advertisements rejected (logged at most every 10 s)");
        self.logged = self.stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::carp::{DEFAULT_GROUP, build_ipv4};

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn group(edit: impl FnOnce(&mut crate::config::RawGroup)) -> GroupConfig {
        let mut raw = crate::config::RawGroup {
            interface: Some("eth0".into()),
            vhid: Some(1),
            vips: vec![format!("{VIP}/24")],
            password: Some("secret".into()),
            ..Default::default()
        };
        edit(&mut raw);
        raw.validate("").unwrap()
    }

    fn receiver() -> Receiver {
        Receiver::new("eth0/vhid1".into(), &group(|_| {}), ME)
    }

    fn unicast_packet(src: Ipv4Addr, dst: Ipv4Addr, counter: u64, ttl: u8) -> Vec<u8> {
        let adv = Advert::signed(1, 1, 0, 0, counter, &[VIP], &Key::new(b"secret"));
        let mut p = build_ipv4(src, dst, 7, &adv).to_vec();
        p[8] = ttl;
        p[10..12].fill(0);
        let sum = carp::checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn a_unicast_group_accepts_its_peers_only_sent_to_this_node() {
        let g = group(|r| {
            r.peers = vec![PEER.to_string()];
            r.srcip = Some(ME.to_string());
        });
        let mut rx = Receiver::new("eth0/vhid1".into(), &g, ME);
        let (now, none) = (Instant::now(), SentCounters::default());
        let other = Ipv4Addr::new(10, 0, 0, 66);
        assert_eq!(
            rx.receive(&unicast_packet(other, ME, 1, 255), none, now),
            Err(Rejection::NotPeer)
        );
        // To the multicast group, or to another node: not for this node.
        assert_eq!(
            rx.receive(&unicast_packet(PEER, DEFAULT_GROUP, 2, 255), none, now),
            Err(Rejection::Carp(CarpError::BadDestination(DEFAULT_GROUP)))
        );
        assert_eq!(
            rx.receive(&unicast_packet(PEER, ME, 3, 64), none, now),
            Err(Rejection::Carp(CarpError::BadTtl(64)))
        );
        assert_eq!(
            rx.receive(&unicast_packet(PEER, ME, 4, 255), none, now)
                .unwrap()
                .0,
            PEER
        );
        let s = rx.stats();
        assert_eq!(
            (s.not_peer, s.bad_destination, s.bad_ttl, s.accepted),
            (1, 1, 1, 1)
        );
        assert!(s.rejections().contains(&("not_peer", 1)));
    }

    #[test]
    fn without_the_ttl_check_a_peer_behind_a_router_is_accepted() {
        let g = group(|r| {
            r.peers = vec![PEER.to_string()];
            r.srcip = Some(ME.to_string());
            r.peer_ttl_check = Some(false);
        });
        let mut rx = Receiver::new("eth0/vhid1".into(), &g, ME);
        let (now, none) = (Instant::now(), SentCounters::default());
        assert!(
            rx.receive(&unicast_packet(PEER, ME, 1, 62), none, now)
                .is_ok()
        );
        // A multicast group never relaxes it.
        let mut rx = receiver();
        assert_eq!(
            rx.receive(&unicast_packet(PEER, DEFAULT_GROUP, 1, 62), none, now),
            Err(Rejection::Carp(CarpError::BadTtl(62)))
        );
    }

    fn packet(src: Ipv4Addr, counter: u64, advskew: u8) -> Vec<u8> {
        let adv = Advert::signed(1, 1, advskew, 0, counter, &[VIP], &Key::new(b"secret"));
        build_ipv4(src, DEFAULT_GROUP, 7, &adv).to_vec()
    }

    #[test]
    fn accepts_each_counter_once_whatever_the_source_or_timing() {
        let mut rx = receiver();
        let now = Instant::now();
        let none = SentCounters::default();
        assert_eq!(rx.receive(&packet(PEER, 10, 0), none, now).unwrap().0, PEER);
        // The same advertisement resent, with better timing, from another address.
        let other = Ipv4Addr::new(10, 0, 0, 66);
        let replay = packet(other, 10, 1);
        assert_eq!(rx.receive(&replay, none, now), Err(Rejection::Replayed));
        assert!(rx.receive(&packet(PEER, 11, 0), none, now).is_ok());
        assert_eq!(rx.stats().accepted, 2);
        assert_eq!(rx.stats().replayed, 1);
    }

    #[test]
    fn our_own_counters_and_address_are_refused() {
        let mut rx = receiver();
        let now = Instant::now();
        let sent = SentCounters {
            start: 99,
            last: 120,
        };
        let r = rx.receive(&packet(PEER, 110, 0), sent, now);
        assert_eq!(r, Err(Rejection::OwnCounter));
        let r = rx.receive(&packet(ME, 5, 0), sent, now);
        assert_eq!(r, Err(Rejection::OwnAddress));
        assert!(rx.receive(&packet(PEER, 121, 0), sent, now).is_ok());
        assert!(rx.receive(&packet(PEER, 99, 0), sent, now).is_ok());
        // Across the wrap of the 64-bit counter.
        let wrapped = SentCounters {
            start: u64::MAX - 1,
            last: 3,
        };
        assert!(wrapped.contains(u64::MAX) && wrapped.contains(0) && wrapped.contains(3));
        assert!(!wrapped.contains(4) && !wrapped.contains(u64::MAX - 1));
        assert_eq!((rx.stats().own_counter, rx.stats().own_address), (1, 1));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_counters_are_forgotten() {
        let mut rx = receiver();
        let now = Instant::now();
        let none = SentCounters::default();
        for c in 0..(REMEMBERED_COUNTERS as u64 + 10) {
            assert!(rx.receive(&packet(PEER, c, 0), none, now).is_ok());
        }
        assert_eq!(rx.seen.len(), REMEMBERED_COUNTERS);
        assert_eq!(rx.order.len(), REMEMBERED_COUNTERS);
        assert!(rx.receive(&packet(PEER, 3, 0), none, now).is_ok());
        let recent = REMEMBERED_COUNTERS as u64;
        assert_eq!(
            rx.receive(&packet(PEER, recent, 0), none, now),
            Err(Rejection::Replayed)
        );
    }

    #[test]
    fn every_decode_error_has_its_own_counter() {
        let mut rx = receiver();
        let now = Instant::now();
        let none = SentCounters::default();
        let mut bad = packet(PEER, 1, 0);
        bad[35] ^= 1;
        // Fix the CARP checksum so that only the HMAC is wrong.
        bad[26..28].fill(0);
        let sum = carp::checksum(&bad[20..]);
        bad[26..28].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            rx.receive(&bad, none, now),
            Err(Rejection::Carp(CarpError::BadHmac))
        );
        assert_eq!(
            rx.receive(&bad[..10], none, now),
            Err(Rejection::Carp(CarpError::TooShort(10)))
        );
        let s = rx.stats();
        assert_eq!((s.bad_hmac, s.too_short, s.accepted), (1, 1, 0));
        let named: Vec<_> = s.rejections().into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(named, [("too_short", 1), ("bad_hmac", 1)]);
    }
}
