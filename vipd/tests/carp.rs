//! The CARP codec against a real ucarp 1.5.2 advertisement, the HMAC test vector, every
//! rejection reason, and properties over random fields and bit flips.
use std::net::Ipv4Addr;

use proptest::prelude::*;
use vipd::carp::{self, Advert, CarpError, DEFAULT_GROUP, Key};

/// Captured with tcpdump from Debian's ucarp 1.5.2 started as
/// `ucarp -i eth0 -s 10.77.0.1 -v 1 -p secret -a 10.0.0.100 -b 1 -k 0`: the IPv4 packet.
const UCARP_ADVERT: &str = "4510003836084000ff705add0a4d0001e0000012210100070001f42db4c541e64ebd732d0e3e71945b3936c8b3c5c6aa9c72690714748bff";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture() -> Vec<u8> {
    hex(UCARP_ADVERT)
}

fn key() -> Key {
    Key::new(b"secret")
}

#[test]
fn ucarp_fixture_parses_and_verifies() {
    let pkt = fixture();
    let (src, dst, payload) = carp::parse_ipv4(&pkt, DEFAULT_GROUP).unwrap();
    assert_eq!(src, Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(dst, DEFAULT_GROUP);
    let adv = Advert::parse(payload).unwrap();
    assert_eq!(
        (adv.vhid, adv.advbase, adv.advskew, adv.demote),
        (1, 1, 0, 0)
    );
    adv.verify(&[VIP], &key()).unwrap();
    assert_eq!(adv.interval(), std::time::Duration::from_secs(1));
}

#[test]
fn building_from_the_fixture_fields_gives_the_same_bytes() {
    let pkt = fixture();
    let adv = Advert::parse(&pkt[20..]).unwrap();
    let rebuilt = Advert::signed(1, 1, 0, 0, adv.counter, &[VIP], &key());
    assert_eq!(rebuilt.to_bytes().as_slice(), &pkt[20..], "36 CARP bytes");
    let id = u16::from_be_bytes([pkt[4], pkt[5]]);
    let whole = carp::build_ipv4(Ipv4Addr::new(10, 77, 0, 1), DEFAULT_GROUP, id, &rebuilt);
    assert_eq!(
        whole.as_slice(),
        pkt.as_slice(),
        "56 bytes, IPv4 header included"
    );
}

#[test]
fn hmac_test_vector() {
    let adv = Advert::signed(1, 1, 0, 0, 0x0102030405060708, &[VIP], &key());
    assert_eq!(
        adv.hmac.to_vec(),
        hex("cb260119c120bd9028af8e4b937692945a05e4dc")
    );
}

#[test]
fn passwords_up_to_ucarps_limit_equal_the_raw_hmac_key() {
    // ucarp keys HMAC with the password zero-padded to 20 bytes; HMAC pads the same way.
    use hmac::{Hmac, Mac};
    let pw = b"nineteen-bytes-long";
    assert_eq!(pw.len(), carp::MAX_PASSWORD);
    let adv = Advert::signed(7, 1, 0, 0, 42, &[VIP], &Key::new(pw));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(pw).unwrap();
    mac.update(&[2, 1, 7, 10, 0, 0, 100]);
    mac.update(&42u64.to_be_bytes());
    assert_eq!(adv.hmac.to_vec(), mac.finalize().into_bytes().to_vec());
}

#[test]
fn wrong_password_or_vip_list_is_bad_hmac() {
    let adv = Advert::parse(&fixture()[20..]).unwrap();
    assert_eq!(
        adv.verify(&[VIP], &Key::new(b"Secret")),
        Err(CarpError::BadHmac)
    );
    assert_eq!(
        adv.verify(&[Ipv4Addr::new(10, 0, 0, 101)], &key()),
        Err(CarpError::BadHmac)
    );
    assert_eq!(
        adv.verify(&[VIP, Ipv4Addr::new(10, 0, 0, 101)], &key()),
        Err(CarpError::BadHmac)
    );
}

/// The fixture with one byte changed and the checksums fixed up, so that only the intended
/// field is wrong.
fn tampered(offset: usize, value: u8) -> Vec<u8> {
    let mut p = fixture();
    p[offset] = value;
    p[26] = 0;
    p[27] = 0;
    let sum = carp::checksum(&p[20..]);
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    p[10] = 0;
    p[11] = 0;
    let sum = carp::checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

fn decode(p: &[u8]) -> Result<(Ipv4Addr, Advert), CarpError> {
    let vips = [VIP];
    let k = key();
    carp::decode(p, DEFAULT_GROUP, |vhid| {
        (vhid == 1).then_some((&vips[..], &k))
    })
}

#[test]
fn the_fixture_decodes_end_to_end() {
    let (src, adv) = decode(&fixture()).unwrap();
    assert_eq!((src, adv.vhid), (Ipv4Addr::new(10, 77, 0, 1), 1));
}

#[test]
fn rejects_too_short() {
    assert_eq!(
        Advert::parse(&fixture()[20..50]),
        Err(CarpError::TooShort(30))
    );
    assert_eq!(decode(&fixture()[..12]), Err(CarpError::TooShort(12)));
}

#[test]
fn rejects_wrong_version() {
    assert_eq!(decode(&tampered(20, 0x31)), Err(CarpError::BadVersion(3)));
}

#[test]
fn rejects_wrong_type() {
    assert_eq!(decode(&tampered(20, 0x22)), Err(CarpError::BadType(2)));
}

#[test]
fn rejects_vrrp() {
    // VRRPv2: version 2 type 1, vrid, priority, count of addresses 1, auth type 0.
    let mut vrrp = fixture()[..20].to_vec();
    vrrp[3] = 40;
    vrrp.extend_from_slice(&[
        0x21, 1, 100, 1, 0, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let sum = carp::checksum(&vrrp[20..]);
    vrrp[26..28].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        Advert::parse(&[&vrrp[20..], &[0u8; 16][..]].concat()),
        Err(CarpError::Vrrp)
    );
}

#[test]
fn rejects_bad_authlen() {
    assert_eq!(decode(&tampered(23, 9)), Err(CarpError::BadAuthLen(9)));
}

#[test]
fn rejects_bad_ttl() {
    assert_eq!(decode(&tampered(8, 64)), Err(CarpError::BadTtl(64)));
}

#[test]
fn rejects_other_protocols() {
    assert_eq!(decode(&tampered(9, 6)), Err(CarpError::NotCarp(6)));
}

#[test]
fn rejects_other_destinations() {
    assert_eq!(
        decode(&tampered(19, 19)),
        Err(CarpError::BadDestination(Ipv4Addr::new(224, 0, 0, 19)))
    );
}

#[test]
fn rejects_bad_checksum() {
    let mut p = fixture();
    p[27] ^= 1;
    assert_eq!(decode(&p), Err(CarpError::BadChecksum));
}

#[test]
fn rejects_unknown_vhid() {
    assert_eq!(decode(&tampered(21, 9)), Err(CarpError::UnknownVhid(9)));
}

#[test]
fn rejects_bad_hmac() {
    // advskew is outside the HMAC: a changed counter is what breaks it.
    assert_eq!(decode(&tampered(35, 0x00)), Err(CarpError::BadHmac));
}

#[test]
fn rejects_malformed_ip_header() {
    assert_eq!(decode(&tampered(0, 0x65)), Err(CarpError::BadIpHeader));
}

#[test]
fn every_single_bit_flip_of_the_fixture_is_rejected() {
    let good = fixture()[20..].to_vec();
    for bit in 0..good.len() * 8 {
        let mut b = good.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let ok = Advert::parse(&b).and_then(|a| a.verify(&[VIP], &key()));
        assert!(ok.is_err(), "flip of bit {bit} accepted");
    }
}

#[test]
fn bow_out_is_recognised() {
    let adv = Advert::signed(1, 255, 255, 0, 1, &[VIP], &key());
    assert!(adv.is_bow_out());
    assert!(!Advert::signed(1, 255, 0, 0, 1, &[VIP], &key()).is_bow_out());
}

proptest! {
    #[test]
    fn build_then_parse_round_trips(vhid in 1u8.., advbase: u8, advskew: u8, demote: u8, counter: u64,
                                     vips in proptest::collection::vec(any::<[u8; 4]>(), 1..4),
                                     pw in proptest::collection::vec(any::<u8>(), 1..20)) {
        let vips: Vec<Ipv4Addr> = vips.into_iter().map(Ipv4Addr::from).collect();
        let key = Key::new(&pw);
        let adv = Advert::signed(vhid, advbase, advskew, demote, counter, &vips, &key);
        let parsed = Advert::parse(&adv.to_bytes()).unwrap();
        prop_assert_eq!(parsed, adv);
        prop_assert!(parsed.verify(&vips, &key).is_ok());
        let pkt = carp::build_ipv4(Ipv4Addr::new(10, 0, 0, 1), DEFAULT_GROUP, 7, &adv);
        let (_, _, payload) = carp::parse_ipv4(&pkt, DEFAULT_GROUP).unwrap();
        prop_assert_eq!(Advert::parse(payload).unwrap(), adv);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(vhid in 1u8.., advbase: u8, advskew: u8, counter: u64,
                                        bit in 0usize..288) {
        let adv = Advert::signed(vhid, advbase, advskew, 0, counter, &[VIP], &key());
        let mut b = adv.to_bytes();
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Advert::parse(&b).and_then(|a| a.verify(&[VIP], &key())).is_err());
    }
}
