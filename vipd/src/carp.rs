//! The CARP advertisement on the wire, as ucarp 1.5.2 and OpenBSD's carp(4) send it: a
//! 36-byte header after an IPv4 header (protocol 112, TTL 255, to 224.0.0.18), carrying
//! version 2 / type 1, vhid, advskew, authlen 7, demote count, advbase, an Internet checksum
//! of the 36 bytes, a 64-bit counter and an HMAC-SHA1 over `02 01 vhid <VIPs> <counter>`
//! keyed with the password. ucarp copies the password and its NUL into a 20-byte key
//! (`CARP_KEY_LEN`) and refuses longer ones ("Password too long"), so a password has at most
//! 19 bytes; HMAC zero-pads the key, which makes the raw password an equivalent key.
use std::net::Ipv4Addr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use vipd_common::{CARP_LEN, CARP_TTL, CARP_VERSION_TYPE, IPPROTO_CARP};

/// Default destination of advertisements.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// advbase and advskew of a bow-out advertisement (OpenBSD/FreeBSD on shutdown/demotion).
pub const BOW_OUT: u8 = 255;
/// ucarp's key buffer: the password and its terminating NUL must fit.
pub const KEY_LEN: usize = 20;
/// Longest password ucarp accepts.
pub const MAX_PASSWORD: usize = KEY_LEN - 1;
/// authlen field as carp(4) and ucarp send it.
const AUTHLEN: u8 = 7;
const IPV4_HLEN: usize = 20;

/// A parsed advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vhid: u8,
    pub advskew: u8,
    pub advbase: u8,
    pub demote: u8,
    pub counter: u64,
    pub hmac: [u8; 20],
}

/// Why a packet is not a valid advertisement for us.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum CarpError {
    #[error("too short: {0} bytes, a CARP advertisement has 36")]
    TooShort(usize),
    #[error("CARP version {0}, expected 2")]
    BadVersion(u8),
    #[error("CARP type {0}, expected 1 (advertisement)")]
    BadType(u8),
    #[error("a VRRP packet, not CARP")]
    Vrrp,
    #[error("authlen {0}, expected 7")]
    BadAuthLen(u8),
    #[error("TTL {0}, advertisements must carry 255")]
    BadTtl(u8),
    #[error("IP protocol {0}, expected 112")]
    NotCarp(u8),
    #[error("sent to {0}, not to the configured group")]
    BadDestination(Ipv4Addr),
    #[error("bad checksum")]
    BadChecksum,
    #[error("vhid {0} is not configured here")]
    UnknownVhid(u8),
    #[error("bad HMAC (wrong password or VIP list)")]
    BadHmac,
    #[error("malformed IPv4 header")]
    BadIpHeader,
}

/// The HMAC key derived from a password as ucarp derives it.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    len: usize,
}

impl Key {
    /// The key for `password`, which configuration checks to be at most [`MAX_PASSWORD`]
    /// bytes as ucarp requires; a longer one is cut to the key buffer.
    pub fn new(password: &[u8]) -> Key {
        let len = password.len().min(KEY_LEN);
        let mut bytes = [0u8; KEY_LEN];
        bytes[..len].copy_from_slice(&password[..len]);
        Key { bytes, len }
    }

    fn mac(&self) -> Hmac<Sha1> {
        Hmac::<Sha1>::new_from_slice(&self.bytes[..self.len]).expect("HMAC takes any key length")
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn hmac_of(vhid: u8, counter: u64, vips: &[Ipv4Addr], key: &Key) -> Hmac<Sha1> {
    let mut mac = key.mac();
    mac.update(&[2, 1, vhid]);
    for v in vips {
        mac.update(&v.octets());
    }
    mac.update(&counter.to_be_bytes());
    mac
}

impl Advert {
    /// Parses the 36 CARP bytes: structure and checksum (not the HMAC).
    pub fn parse(carp: &[u8]) -> Result<Advert, CarpError> {
        if carp.len() < CARP_LEN {
            return Err(CarpError::TooShort(carp.len()));
        }
        let carp = &carp[..CARP_LEN];
        let (version, kind) = (carp[0] >> 4, carp[0] & 0x0f);
        if version != 2 {
            return Err(CarpError::BadVersion(version));
        }
        if kind != 1 {
            return Err(CarpError::BadType(kind));
        }
        if carp[3] != AUTHLEN {
            // VRRPv2 puts the address count in byte 3 and authentication type in byte 4.
            return Err(if carp[3] < AUTHLEN && carp[4] <= 2 {
                CarpError::Vrrp
            } else {
                CarpError::BadAuthLen(carp[3])
            });
        }
        if checksum(carp) != 0 {
            return Err(CarpError::BadChecksum);
        }
        let mut hmac = [0u8; 20];
        hmac.copy_from_slice(&carp[16..36]);
        Ok(Advert {
            vhid: carp[1],
            advskew: carp[2],
            demote: carp[4],
            advbase: carp[5],
            counter: u64::from_be_bytes(carp[8..16].try_into().expect("8 bytes")),
            hmac,
        })
    }

    /// The 36 bytes, checksum filled in.
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

    /// A signed advertisement.
    pub fn signed(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
        vips: &[Ipv4Addr],
        key: &Key,
    ) -> Advert {
        let hmac = hmac_of(vhid, counter, vips, key)
            .finalize()
            .into_bytes()
            .into();
        Advert {
            vhid,
            advskew,
            advbase,
            demote,
            counter,
            hmac,
        }
    }

    /// Checks the HMAC, in constant time, against the group's VIPs in order.
    pub fn verify(&self, vips: &[Ipv4Addr], key: &Key) -> Result<(), CarpError> {
        let want: [u8; 20] = hmac_of(self.vhid, self.counter, vips, key)
            .finalize()
            .into_bytes()
            .into();
        if bool::from(want.ct_eq(&self.hmac)) {
            Ok(())
        } else {
            Err(CarpError::BadHmac)
        }
    }

    /// The interval it announces: advbase + advskew/256 seconds.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.advbase))
            + Duration::from_micros(u64::from(self.advskew) * 1_000_000 / 256)
    }

    pub fn is_bow_out(&self) -> bool {
        self.advbase == BOW_OUT && self.advskew == BOW_OUT
    }
}

/// Checks the IPv4 fields vipd relies on and returns (source, destination, CARP bytes).
pub fn parse_ipv4(
    packet: &[u8],
    group: Ipv4Addr,
) -> Result<(Ipv4Addr, Ipv4Addr, &[u8]), CarpError> {
    if packet.len() < IPV4_HLEN {
        return Err(CarpError::TooShort(packet.len()));
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if packet[0] >> 4 != 4 || ihl < IPV4_HLEN || packet.len() < ihl {
        return Err(CarpError::BadIpHeader);
    }
    if packet[9] != IPPROTO_CARP {
        return Err(CarpError::NotCarp(packet[9]));
    }
    if packet[8] != CARP_TTL {
        return Err(CarpError::BadTtl(packet[8]));
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    if dst != group {
        return Err(CarpError::BadDestination(dst));
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let end = total.clamp(ihl, packet.len());
    Ok((src, dst, &packet[ihl..end]))
}

/// A whole IPv4 packet as ucarp sends it: TOS 0x10, DF, TTL 255, protocol 112.
pub fn build_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    advert: &Advert,
) -> [u8; IPV4_HLEN + CARP_LEN] {
    let mut p = [0u8; IPV4_HLEN + CARP_LEN];
    p[0] = 0x45;
    p[1] = 0x10;
    p[2..4].copy_from_slice(&((IPV4_HLEN + CARP_LEN) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6] = 0x40;
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
    let (src, _, carp) = parse_ipv4(packet, group)?;
    let advert = Advert::parse(carp)?;
    let (vips, key) = lookup(advert.vhid).ok_or(CarpError::UnknownVhid(advert.vhid))?;
    advert.verify(vips, key)?;
    Ok((src, advert))
}
