//! The CARP advertisement codec: the wire format that ucarp 1.5.2 (src/carp.c) and OpenBSD's
//! carp(4) (sys/netinet/ip_carp.c) exchange. An IPv4 packet (protocol 112, TTL 255, TOS 0x10,
//! DF, to 224.0.0.18) carries 36 bytes: version 2 / type 1, vhid, advskew, authlen 7,
//! OpenBSD's demote count (ucarp sends 0), advbase, the Internet checksum of the 36 bytes, a
//! 64-bit counter and HMAC-SHA1 over `02 01 <vhid> <each VIP> <counter>`.
//!
//! The key is derived as ucarp 1.5.2 does it: the password and its terminating NUL are copied
//! into a 20-byte buffer (`sc_key`, `CARP_KEY_LEN`), and a password that does not fit (20
//! bytes or more) is refused with "Password too long" — never truncated. Because HMAC
//! zero-pads its key, the buffer is equivalent to the raw password as a standard HMAC key.
//! advbase, advskew and the demote count are outside the HMAC (only the checksum covers them).
use std::net::Ipv4Addr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use vipd_common::{CARP_LEN, CARP_TTL, CARP_VERSION_TYPE, IPPROTO_CARP, IPV4_HLEN};

/// Default destination of advertisements (ucarp without `-M`).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// advbase and advskew of a bow-out advertisement (OpenBSD/FreeBSD on shutdown/demotion).
pub const BOW_OUT: u8 = 255;
/// ucarp's key buffer (`CARP_KEY_LEN`): the password and its terminating NUL must fit.
pub const KEY_LEN: usize = 20;
/// Longest password ucarp 1.5.2 accepts: one byte of the key buffer holds the NUL.
pub const MAX_PASSWORD: usize = KEY_LEN - 1;
/// authlen as carp(4) and ucarp send it, in 32-bit words (counter + HMAC).
const AUTHLEN: u8 = 7;
/// TOS of advertisements (IPTOS_LOWDELAY).
const TOS_LOWDELAY: u8 = 0x10;
/// The Don't Fragment flag in the IPv4 flags/fragment-offset field.
const IP_DF: u16 = 0x4000;
/// The More Fragments flag and fragment offset bits.
const IP_FRAGMENT_BITS: u16 = 0x3fff;

/// A CARP advertisement, as parsed from or written to the 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vhid: u8,
    pub advskew: u8,
    pub advbase: u8,
    /// OpenBSD's demote count (byte 4); ucarp sends and ignores 0.
    pub demote: u8,
    pub counter: u64,
    pub hmac: [u8; 20],
}

/// Why a packet is not a valid advertisement for us, or a password is not usable.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum CarpError {
    #[error(
        "truncated packet: {0} bytes, too short for an IPv4 header and a 36-byte CARP advertisement"
    )]
    TooShort(usize),
    #[error("CARP version {0}: only version 2 exists")]
    BadVersion(u8),
    #[error("CARP message type {0}: only type 1 (advertisement) exists")]
    BadType(u8),
    #[error(
        "a VRRPv2 packet, not CARP (both use IP protocol 112): is a VRRP router such as keepalived on this segment?"
    )]
    Vrrp,
    #[error("CARP authlen {0}: CARP always sends 7")]
    BadAuthLen(u8),
    #[error(
        "IP TTL {0} instead of 255: advertisements are only accepted straight from the local link"
    )]
    BadTtl(u8),
    #[error("IP protocol {0}, not CARP (112)")]
    NotCarp(u8),
    #[error("sent to {0}, not to the advertisement group configured here")]
    BadDestination(Ipv4Addr),
    #[error("CARP checksum mismatch: the advertisement was corrupted")]
    BadChecksum,
    #[error("IPv4 header checksum mismatch: the packet was corrupted")]
    BadIpChecksum,
    #[error("vhid {0} is not configured on this interface")]
    UnknownVhid(u8),
    #[error(
        "HMAC mismatch: the sender uses another password or VIP list (vhid, password and VIPs must be the same on every node)"
    )]
    BadHmac,
    #[error("malformed IPv4 header (version or header length is wrong)")]
    BadIpHeader,
    #[error("IPv4 options: CARP senders never use them")]
    IpOptions,
    #[error("IPv4 total length {0}: a CARP advertisement is always 56 bytes")]
    BadLength(usize),
    #[error("an IPv4 fragment: advertisements are never fragmented")]
    Fragment,
}

/// Why a password cannot be a CARP key.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "password of {0} bytes: ucarp accepts at most 19 (\"Password too long\"), and so does vipd"
    )]
    TooLong(usize),
    #[error("empty password: ucarp requires one, and so does vipd")]
    Empty,
}

/// What a group's HMAC covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coverage {
    /// As ucarp and carp(4): vhid, VIPs and counter. advbase, advskew, the demote count and
    /// the sender's address are not authenticated: a host that captured one advertisement
    /// can resend it with better timing from anywhere (vipd rejects such replays by their
    /// counter).
    #[default]
    Carp,
    /// vipd only: also advbase, advskew, the demote count and the IPv4 source address. Costs
    /// 11 more bytes through HMAC-SHA1 per advertisement; ucarp and BSD peers cannot verify
    /// it, so every node of the group must be vipd with this setting.
    All,
}

/// The HMAC key of a group, prepared from its password as ucarp 1.5.2 prepares it.
#[derive(Clone)]
pub struct Key {
    /// HMAC-SHA1 keyed with ucarp's 20-byte key buffer, cloned for each message.
    mac: Hmac<Sha1>,
}

impl Key {
    /// The key for `password`.
    ///
    /// # Panics
    ///
    /// If ucarp 1.5.2 would refuse the password (empty, or [`MAX_PASSWORD`] + 1 = 20 bytes
    /// or more): configuration checks it first; use [`Key::try_new`] for an error instead.
    pub fn new(password: &[u8]) -> Key {
        match Key::try_new(password) {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// The key for `password`, or why ucarp 1.5.2 would refuse it.
    ///
    /// ucarp copies `strlen(pass) + 1` bytes (the password and its NUL) into the 20-byte
    /// `sc_key`, and stops with "Password too long" when that is more than 20: a password
    /// has at most 19 bytes and is never truncated. The rest of the buffer is zero. vipd
    /// takes the password as bytes; ucarp's command line cannot carry a NUL byte.
    pub fn try_new(password: &[u8]) -> Result<Key, KeyError> {
        if password.is_empty() {
            return Err(KeyError::Empty);
        }
        if password.len() > MAX_PASSWORD {
            return Err(KeyError::TooLong(password.len()));
        }
        let mut buffer = [0u8; KEY_LEN];
        buffer[..password.len()].copy_from_slice(password);
        let mac = Hmac::<Sha1>::new_from_slice(&buffer).expect("HMAC takes keys of any length");
        Ok(Key { mac })
    }

    /// The digest OpenBSD and FreeBSD compute, over the group's addresses in ascending
    /// order (ucarp's for a group of one VIP), and with `fields` (advbase, advskew, demote,
    /// source) vipd's [`Coverage::All`] digest, which appends them after a label of its own.
    fn digest(
        &self,
        vhid: u8,
        counter: u64,
        vips: &[Ipv4Addr],
        fields: Option<(u8, u8, u8, Ipv4Addr)>,
    ) -> [u8; 20] {
        let mut sorted = vips.to_vec();
        sorted.sort_unstable();
        self.digest_in_order(vhid, counter, &sorted, fields)
    }

    /// The digest over `vips` in the order given: what vipd before the BSD-compatible
    /// form sent for a group whose VIPs are not listed in ascending order.
    fn digest_in_order(
        &self,
        vhid: u8,
        counter: u64,
        vips: &[Ipv4Addr],
        fields: Option<(u8, u8, u8, Ipv4Addr)>,
    ) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(&[2, 1, vhid]);
        for vip in vips {
            mac.update(&vip.octets());
        }
        mac.update(&counter.to_be_bytes());
        if let Some((advbase, advskew, demote, src)) = fields {
            mac.update(b"vipd-all");
            mac.update(&[advbase, advskew, demote]);
            mac.update(&src.octets());
        }
        mac.finalize().into_bytes().into()
    }
}

/// Two keys are equal when they sign alike (a reload compares configurations by it); the
/// comparison runs on configuration, never on received packets.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        let probe = |k: &Key| k.digest(0, 0, &[], None);
        probe(self) == probe(other)
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// RFC 1071 Internet checksum: the one's complement of the one's complement sum of the
/// 16-bit big-endian words (an odd last byte is padded with zero). Over data that holds its
/// own correct checksum it is 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// advskew/256 s, truncated to microseconds as ucarp's `struct timeval` does.
pub fn skew(advskew: u8) -> Duration {
    Duration::from_micros(u64::from(advskew) * 1_000_000 / 256)
}

/// The advertisement interval: advbase + advskew/256 s (the one formula vipd uses).
pub fn interval_of(advbase: u8, advskew: u8) -> Duration {
    Duration::from_secs(u64::from(advbase)) + skew(advskew)
}

/// Whether bytes that start with 0x21 are a VRRPv2 packet (RFC 3768): byte 3 counts the
/// addresses (CARP has authlen 7 there), byte 4 is the authentication type (0 to 2), and
/// the packet is 16 + 4 × count bytes. When only a fixed 36-byte window is at hand (the XDP
/// program copies 36 bytes), a whole VRRPv2 packet fits in it with at most 5 addresses.
fn looks_like_vrrp(b: &[u8]) -> bool {
    let count = usize::from(b[3]);
    count > 0
        && (b.len() == 16 + 4 * count
            || (b.len() == CARP_LEN && count <= 5 && b[4] <= 2 && b[3] != AUTHLEN))
}

impl Advert {
    /// Parses the CARP bytes (the IP payload): structure and checksum, not the HMAC.
    ///
    /// Checks in order: length for the fixed part, version 2, type 1, VRRP (by length and
    /// byte 3), 36 bytes, authlen 7, then the checksum over the whole payload (as OpenBSD).
    pub fn parse(carp: &[u8]) -> Result<Advert, CarpError> {
        if carp.len() < 5 {
            return Err(CarpError::TooShort(carp.len()));
        }
        let (version, kind) = (carp[0] >> 4, carp[0] & 0x0f);
        if version != CARP_VERSION_TYPE >> 4 {
            return Err(CarpError::BadVersion(version));
        }
        if kind != CARP_VERSION_TYPE & 0x0f {
            return Err(CarpError::BadType(kind));
        }
        if looks_like_vrrp(carp) {
            return Err(CarpError::Vrrp);
        }
        if carp.len() < CARP_LEN {
            return Err(CarpError::TooShort(carp.len()));
        }
        if carp[3] != AUTHLEN {
            return Err(CarpError::BadAuthLen(carp[3]));
        }
        if checksum(carp) != 0 {
            return Err(CarpError::BadChecksum);
        }
        let mut hmac = [0u8; 20];
        hmac.copy_from_slice(&carp[16..36]);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&carp[8..16]);
        Ok(Advert {
            vhid: carp[1],
            advskew: carp[2],
            demote: carp[4],
            advbase: carp[5],
            counter: u64::from_be_bytes(counter),
            hmac,
        })
    }

    /// The 36 bytes, checksum filled in; `self.hmac` is written as it is.
    pub fn to_bytes(&self) -> [u8; CARP_LEN] {
        let mut b = [0u8; CARP_LEN];
        b[0] = CARP_VERSION_TYPE;
        b[1] = self.vhid;
        b[2] = self.advskew;
        b[3] = AUTHLEN;
        b[4] = self.demote;
        b[5] = self.advbase;
        b[8..16].copy_from_slice(&self.counter.to_be_bytes());
        b[16..36].copy_from_slice(&self.hmac);
        let sum = checksum(&b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// An advertisement signed with `key` over `vips` (hashed in ascending order).
    pub fn signed(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
        vips: &[Ipv4Addr],
        key: &Key,
    ) -> Advert {
        Advert {
            vhid,
            advskew,
            advbase,
            demote,
            counter,
            hmac: key.digest(vhid, counter, vips, None),
        }
    }

    /// This advertisement signed again for `coverage`, as sent from `src`.
    pub fn sealed(
        mut self,
        coverage: Coverage,
        vips: &[Ipv4Addr],
        key: &Key,
        src: Ipv4Addr,
    ) -> Advert {
        self.hmac = key.digest(self.vhid, self.counter, vips, self.covered(coverage, src));
        self
    }

    fn covered(&self, coverage: Coverage, src: Ipv4Addr) -> Option<(u8, u8, u8, Ipv4Addr)> {
        match coverage {
            Coverage::Carp => None,
            Coverage::All => Some((self.advbase, self.advskew, self.demote, src)),
        }
    }

    /// Checks the HMAC against the group's VIPs, comparing in constant time.
    pub fn verify(&self, vips: &[Ipv4Addr], key: &Key) -> Result<(), CarpError> {
        self.verify_covering(Coverage::Carp, vips, key, Ipv4Addr::UNSPECIFIED)
    }

    /// Checks the HMAC for `coverage`, the advertisement having come from `src`.
    pub fn verify_covering(
        &self,
        coverage: Coverage,
        vips: &[Ipv4Addr],
        key: &Key,
        src: Ipv4Addr,
    ) -> Result<(), CarpError> {
        let fields = self.covered(coverage, src);
        let want = key.digest(self.vhid, self.counter, vips, fields);
        if bool::from(want.ct_eq(&self.hmac)) {
            return Ok(());
        }
        // A peer running an older vipd hashes the VIPs in the order they are listed; it is
        // accepted, so that upgrading one node never makes it a second master.
        if !vips.is_sorted() {
            let listed = key.digest_in_order(self.vhid, self.counter, vips, fields);
            if bool::from(listed.ct_eq(&self.hmac)) {
                return Ok(());
            }
        }
        Err(CarpError::BadHmac)
    }

    /// The interval it announces: advbase + advskew/256 s (to the microsecond, as ucarp).
    pub fn interval(&self) -> Duration {
        interval_of(self.advbase, self.advskew)
    }

    /// A bow-out: advbase and advskew both 255.
    pub fn is_bow_out(&self) -> bool {
        is_bow_out(self.advbase, self.advskew)
    }
}

/// Whether advbase and advskew mark a bow-out (both 255).
pub fn is_bow_out(advbase: u8, advskew: u8) -> bool {
    advbase == BOW_OUT && advskew == BOW_OUT
}

/// Checks the IPv4 fields vipd relies on and returns (source, destination, CARP bytes).
///
/// In order: 20 bytes at least, version 4 and a 20-byte header (no options: the XDP
/// program passes nothing else either), total length 56 and within the packet (bytes after
/// it, such as Ethernet padding, are dropped), the header checksum, no fragmentation,
/// protocol 112, TTL 255, destination `group`.
pub fn parse_ipv4(
    packet: &[u8],
    group: Ipv4Addr,
) -> Result<(Ipv4Addr, Ipv4Addr, &[u8]), CarpError> {
    parse_ipv4_ttl(packet, group, true)
}

/// [`parse_ipv4`], checking the TTL only with `ttl_check` (a unicast peer behind a router
/// may be accepted whatever its TTL).
pub fn parse_ipv4_ttl(
    packet: &[u8],
    group: Ipv4Addr,
    ttl_check: bool,
) -> Result<(Ipv4Addr, Ipv4Addr, &[u8]), CarpError> {
    if packet.len() < IPV4_HLEN {
        return Err(CarpError::TooShort(packet.len()));
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if packet[0] >> 4 != 4 || ihl < IPV4_HLEN {
        return Err(CarpError::BadIpHeader);
    }
    if ihl != IPV4_HLEN {
        return Err(CarpError::IpOptions);
    }
    if total != IPV4_HLEN + CARP_LEN {
        return Err(CarpError::BadLength(total));
    }
    if total > packet.len() {
        return Err(CarpError::TooShort(packet.len()));
    }
    if checksum(&packet[..ihl]) != 0 {
        return Err(CarpError::BadIpChecksum);
    }
    if u16::from_be_bytes([packet[6], packet[7]]) & IP_FRAGMENT_BITS != 0 {
        return Err(CarpError::Fragment);
    }
    if packet[9] != IPPROTO_CARP {
        return Err(CarpError::NotCarp(packet[9]));
    }
    if ttl_check && packet[8] != CARP_TTL {
        return Err(CarpError::BadTtl(packet[8]));
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    if dst != group {
        return Err(CarpError::BadDestination(dst));
    }
    Ok((src, dst, &packet[ihl..total]))
}

/// A whole IPv4 packet as ucarp sends it: 20-byte header with TOS 0x10, identification
/// `id`, DF, TTL 255, protocol 112 and its checksum, then the 36 CARP bytes.
pub fn build_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    advert: &Advert,
) -> [u8; IPV4_HLEN + CARP_LEN] {
    let mut p = [0u8; IPV4_HLEN + CARP_LEN];
    p[0] = 0x45;
    p[1] = TOS_LOWDELAY;
    p[2..4].copy_from_slice(&((IPV4_HLEN + CARP_LEN) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&IP_DF.to_be_bytes());
    p[8] = CARP_TTL;
    p[9] = IPPROTO_CARP;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&p[..IPV4_HLEN]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[IPV4_HLEN..].copy_from_slice(&advert.to_bytes());
    p
}

/// The whole receive check of one IPv4 packet: the IPv4 fields, structure and checksum,
/// the vhid (`lookup` gives a configured group's VIPs and key), then the HMAC.
pub fn decode<'a>(
    packet: &[u8],
    group: Ipv4Addr,
    lookup: impl Fn(u8) -> Option<(&'a [Ipv4Addr], &'a Key)>,
) -> Result<(Ipv4Addr, Advert), CarpError> {
    decode_covering(packet, group, |vhid| {
        lookup(vhid).map(|(vips, key)| (vips, key, Coverage::Carp))
    })
}

/// [`decode`] for groups whose HMAC may cover more ([`Coverage`]).
pub fn decode_covering<'a>(
    packet: &[u8],
    group: Ipv4Addr,
    lookup: impl Fn(u8) -> Option<(&'a [Ipv4Addr], &'a Key, Coverage)>,
) -> Result<(Ipv4Addr, Advert), CarpError> {
    let (src, _, carp) = parse_ipv4(packet, group)?;
    Ok((src, decode_carp(carp, src, lookup)?))
}

/// The CARP part of the receive check: structure and checksum, the vhid (`lookup` gives a
/// configured group's VIPs and key), then the HMAC over the bytes `carp` sent from `src`.
pub fn decode_carp<'a>(
    carp: &[u8],
    src: Ipv4Addr,
    lookup: impl Fn(u8) -> Option<(&'a [Ipv4Addr], &'a Key, Coverage)>,
) -> Result<Advert, CarpError> {
    let advert = Advert::parse(carp)?;
    let (vips, key, coverage) = lookup(advert.vhid).ok_or(CarpError::UnknownVhid(advert.vhid))?;
    advert.verify_covering(coverage, vips, key, src)?;
    Ok(advert)
}

#[cfg(test)]
mod tests;
