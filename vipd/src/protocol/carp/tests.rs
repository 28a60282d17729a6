use super::*;
use proptest::prelude::*;

/// One advertisement captured with `tcpdump -x` on a veth from Debian's ucarp 1.5.2
/// started as `ucarp -i eth0 -s 10.77.0.1 -v 1 -p secret -a 10.0.0.100 -b 1 -k 0`:
/// the whole IPv4 packet, 20-byte header and 36 CARP bytes.
const UCARP_1_5_2_ADVERT: &str = "4510003836084000ff705add0a4d0001e0000012210100070001f42db4c541e64ebd732d0e3e71945b3936c8b3c5c6aa9c72690714748bff";
const UCARP_SRC: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture() -> Vec<u8> {
    hex(UCARP_1_5_2_ADVERT)
}

fn secret() -> Key {
    Key::new(b"secret")
}

/// The fixture with one byte set and both checksums recomputed, so that only that
/// field is wrong.
fn tampered(offset: usize, value: u8) -> Vec<u8> {
    let mut p = fixture();
    p[offset] = value;
    refresh_checksums(&mut p);
    p
}

fn refresh_checksums(p: &mut [u8]) {
    p[26..28].fill(0);
    let sum = checksum(&p[20..]);
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    p[10..12].fill(0);
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// The receive path of the daemon for the fixture's group (vhid 1, `secret`, the VIP).
fn receive(p: &[u8]) -> Result<(Ipv4Addr, Advert), CarpError> {
    let vips = [VIP];
    let key = secret();
    decode(p, DEFAULT_GROUP, |vhid| {
        (vhid == 1).then_some((&vips[..], &key))
    })
}

fn parse_and_verify(carp: &[u8], vips: &[Ipv4Addr], key: &Key) -> Result<Advert, CarpError> {
    let advert = Advert::parse(carp)?;
    advert.verify(vips, key)?;
    Ok(advert)
}

#[test]
fn ucarp_fixture_parses_and_verifies() {
    let pkt = fixture();
    let (src, dst, carp) = parse_ipv4(&pkt, DEFAULT_GROUP).unwrap();
    assert_eq!((src, dst, carp.len()), (UCARP_SRC, DEFAULT_GROUP, 36));
    let adv = Advert::parse(carp).unwrap();
    assert_eq!(
        (adv.vhid, adv.advbase, adv.advskew, adv.demote),
        (1, 1, 0, 0)
    );
    assert_eq!(adv.counter, 0xb4c5_41e6_4ebd_732d);
    adv.verify(&[VIP], &secret()).unwrap();
    assert_eq!(adv.interval(), Duration::from_secs(1));
    assert!(!adv.is_bow_out());
    assert_eq!(receive(&pkt), Ok((UCARP_SRC, adv)));
}

#[test]
fn fixture_fields_rebuild_the_same_36_bytes() {
    let pkt = fixture();
    let adv = Advert::parse(&pkt[20..]).unwrap();
    let rebuilt = Advert::signed(1, 1, 0, 0, adv.counter, &[VIP], &secret());
    assert_eq!(rebuilt, adv);
    assert_eq!(rebuilt.to_bytes().as_slice(), &pkt[20..]);
}

#[test]
fn build_ipv4_reproduces_the_whole_fixture_packet() {
    let pkt = fixture();
    let adv = Advert::signed(1, 1, 0, 0, 0xb4c5_41e6_4ebd_732d, &[VIP], &secret());
    let id = u16::from_be_bytes([pkt[4], pkt[5]]);
    let built = build_ipv4(UCARP_SRC, DEFAULT_GROUP, id, &adv);
    assert_eq!(built.as_slice(), pkt.as_slice());
}

#[test]
fn hmac_test_vector_from_the_notes() {
    let adv = Advert::signed(1, 1, 0, 0, 0x0102_0304_0506_0708, &[VIP], &secret());
    assert_eq!(
        adv.hmac.to_vec(),
        hex("cb260119c120bd9028af8e4b937692945a05e4dc")
    );
    adv.verify(&[VIP], &secret()).unwrap();
}

#[test]
fn the_key_is_ucarps_zero_padded_buffer_which_equals_the_raw_password() {
    // ucarp keys HMAC with `sc_key`: the password, its NUL and zeros up to 20 bytes.
    // HMAC zero-pads any key shorter than the SHA-1 block, so the raw password is the
    // same key: checked here at ucarp's longest password, 19 bytes.
    let pw = b"nineteen-bytes-long";
    assert_eq!(pw.len(), MAX_PASSWORD);
    let adv = Advert::signed(7, 1, 0, 0, 42, &[VIP], &Key::new(pw));
    let mut mac = Hmac::<Sha1>::new_from_slice(pw).unwrap();
    mac.update(&[2, 1, 7, 10, 0, 0, 100]);
    mac.update(&42u64.to_be_bytes());
    assert_eq!(adv.hmac.to_vec(), mac.finalize().into_bytes().to_vec());
}

#[test]
fn passwords_of_20_bytes_or_more_are_refused_as_ucarp_does_not_truncated() {
    // ucarp 1.5.2, docarp(): `passlen = strlen(pass) + 1; if (passlen > sizeof
    // sc.sc_key) { "Password too long"; return -1; }` with sc_key[20]: ucarp exits at
    // start. There is no truncation to 20 bytes, so no ucarp node can share such a
    // password, and vipd refuses it the same way.
    let twenty = b"twenty-bytes-long-pw";
    assert_eq!(twenty.len(), 20);
    assert_eq!(Key::try_new(twenty).unwrap_err(), KeyError::TooLong(20));
    assert_eq!(
        Key::try_new(&[b'x'; 64]).unwrap_err(),
        KeyError::TooLong(64)
    );
    assert!(Key::try_new(&twenty[..19]).is_ok());
    assert_eq!(Key::try_new(b"").unwrap_err(), KeyError::Empty);
}

#[test]
#[should_panic(expected = "Password too long")]
fn key_new_panics_on_a_password_ucarp_refuses() {
    let _ = Key::new(b"twenty-bytes-long-pw");
}

#[test]
fn key_debug_does_not_show_the_password() {
    let shown = format!("{:?}", Key::new(b"hunter2"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(shown, "Key(<redacted>)");
}

#[test]
fn wrong_password_is_bad_hmac() {
    let adv = Advert::parse(&fixture()[20..]).unwrap();
    assert_eq!(
        adv.verify(&[VIP], &Key::new(b"Secret")),
        Err(CarpError::BadHmac)
    );
    assert_eq!(
        adv.verify(&[VIP], &Key::new(b"secre")),
        Err(CarpError::BadHmac)
    );
    // Trailing NULs vanish in the zero-padded key buffer, in ucarp as in HMAC.
    assert_eq!(adv.verify(&[VIP], &Key::new(b"secret\0")), Ok(()));
}

#[test]
fn wrong_vip_list_is_bad_hmac() {
    let adv = Advert::parse(&fixture()[20..]).unwrap();
    let other = Ipv4Addr::new(10, 0, 0, 101);
    for vips in [&[other][..], &[VIP, other], &[other, VIP], &[]] {
        assert_eq!(
            adv.verify(vips, &secret()),
            Err(CarpError::BadHmac),
            "{vips:?}"
        );
    }
    // Every VIP is part of the message, in ascending order whatever the listed order.
    let two = Advert::signed(1, 1, 0, 0, 9, &[other, VIP], &secret());
    assert!(two.verify(&[VIP, other], &secret()).is_ok());
    assert!(two.verify(&[other, VIP], &secret()).is_ok());
    assert_eq!(two.verify(&[VIP], &secret()), Err(CarpError::BadHmac));
}

/// HMAC-SHA1 with key "secret" (zero-padded to 20 bytes, as ucarp and the BSDs key it) of
/// `02 01 vhid`, the group's IPv4 addresses in ascending order, then the 8 counter bytes:
/// the message OpenBSD's and FreeBSD's carp(4) sign. Computed independently of vipd (with
/// Python's hmac module) from that description.
#[test]
fn a_two_vip_group_signs_as_bsd_carp_does() {
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 9));
    let want = hex("2f7c8de5ee08a67713026f00abef449e144394fa");
    for listed in [[a, b], [b, a]] {
        let adv = Advert::signed(3, 1, 0, 0, 0x0102_0304_0506_0708, &listed, &secret());
        assert_eq!(adv.hmac.to_vec(), want, "{listed:?}");
    }
}

/// A group whose VIPs are listed out of order accepts what an older vipd sent (hashed in
/// the listed order), and only for that list.
#[test]
fn an_older_peers_listed_order_digest_is_accepted() {
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 9));
    let mut adv = Advert::signed(3, 1, 0, 0, 77, &[a, b], &secret());
    adv.hmac = secret().digest_in_order(3, 77, &[a, b], None);
    assert!(adv.verify(&[a, b], &secret()).is_ok());
    // A list in ascending order is what every vipd hashes: no second form to accept.
    adv.hmac = secret().digest_in_order(3, 77, &[b, a], None);
    assert!(adv.verify(&[b, a], &secret()).is_ok());
    adv.hmac = secret().digest_in_order(3, 77, &[a, b, a], None);
    assert_eq!(adv.verify(&[a, b], &secret()), Err(CarpError::BadHmac));
}

#[test]
fn rejects_too_short() {
    let pkt = fixture();
    assert_eq!(Advert::parse(&pkt[20..50]), Err(CarpError::TooShort(30)));
    assert_eq!(Advert::parse(&pkt[20..22]), Err(CarpError::TooShort(2)));
    assert_eq!(Advert::parse(&[]), Err(CarpError::TooShort(0)));
    assert_eq!(
        parse_ipv4(&pkt[..12], DEFAULT_GROUP),
        Err(CarpError::TooShort(12))
    );
    // The IPv4 total length (56) says more than was captured.
    assert_eq!(
        parse_ipv4(&pkt[..40], DEFAULT_GROUP),
        Err(CarpError::TooShort(40))
    );
}

#[test]
fn rejects_bad_version() {
    assert_eq!(receive(&tampered(20, 0x31)), Err(CarpError::BadVersion(3)));
}

#[test]
fn rejects_bad_type() {
    assert_eq!(receive(&tampered(20, 0x22)), Err(CarpError::BadType(2)));
}

/// A VRRPv2 advertisement (RFC 3768): vrid 1, priority 100, 1 address, no auth,
/// interval 1, checksum, 10.0.0.100, 8 bytes of authentication data.
fn vrrp() -> Vec<u8> {
    let mut v = vec![
        0x21, 1, 100, 1, 0, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let sum = checksum(&v);
    v[6..8].copy_from_slice(&sum.to_be_bytes());
    v
}

#[test]
fn rejects_vrrp() {
    // Whole, told apart by its length 16 + 4 × count and byte 3 (a count, not 7).
    let v = vrrp();
    assert_eq!(Advert::parse(&v), Err(CarpError::Vrrp));
    // In a fixed 36-byte window, as the XDP program hands packets over.
    let mut window = v.clone();
    window.resize(36, 0);
    assert_eq!(Advert::parse(&window), Err(CarpError::Vrrp));
    // With 7 addresses byte 3 is 7 as in CARP, but the length (44) gives it away.
    let mut seven = vec![0x21, 1, 100, 7, 0, 1, 0, 0];
    seven.resize(44, 0);
    assert_eq!(Advert::parse(&seven), Err(CarpError::Vrrp));
    // Through the IPv4 layer its length already differs from an advertisement's, as
    // the XDP program sees it.
    let mut pkt = fixture()[..20].to_vec();
    pkt[2..4].copy_from_slice(&40u16.to_be_bytes());
    pkt.extend_from_slice(&v);
    refresh_ip_checksum(&mut pkt);
    assert_eq!(receive(&pkt), Err(CarpError::BadLength(40)));
}

fn refresh_ip_checksum(p: &mut [u8]) {
    p[10..12].fill(0);
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn rejects_bad_authlen() {
    assert_eq!(receive(&tampered(23, 9)), Err(CarpError::BadAuthLen(9)));
    assert_eq!(receive(&tampered(23, 8)), Err(CarpError::BadAuthLen(8)));
}

#[test]
fn rejects_bad_ttl() {
    assert_eq!(receive(&tampered(8, 64)), Err(CarpError::BadTtl(64)));
    assert_eq!(receive(&tampered(8, 254)), Err(CarpError::BadTtl(254)));
}

#[test]
fn rejects_other_ip_protocols() {
    assert_eq!(receive(&tampered(9, 6)), Err(CarpError::NotCarp(6)));
}

#[test]
fn rejects_other_destinations() {
    assert_eq!(
        receive(&tampered(19, 19)),
        Err(CarpError::BadDestination(Ipv4Addr::new(224, 0, 0, 19)))
    );
    // Broadcast mode (ucarp -M) is another group.
    let pkt = fixture();
    assert_eq!(
        parse_ipv4(&pkt, Ipv4Addr::BROADCAST),
        Err(CarpError::BadDestination(DEFAULT_GROUP))
    );
}

#[test]
fn rejects_bad_checksum() {
    let mut p = fixture();
    p[27] ^= 1;
    assert_eq!(receive(&p), Err(CarpError::BadChecksum));
    // A field changed without fixing the checksum.
    let mut p = fixture();
    p[25] = 2; // advbase
    assert_eq!(receive(&p), Err(CarpError::BadChecksum));
}

#[test]
fn rejects_bad_ip_checksum() {
    let mut p = fixture();
    p[11] ^= 0x80;
    assert_eq!(receive(&p), Err(CarpError::BadIpChecksum));
}

#[test]
fn rejects_unknown_vhid() {
    assert_eq!(receive(&tampered(21, 9)), Err(CarpError::UnknownVhid(9)));
}

#[test]
fn rejects_bad_hmac() {
    // The counter is inside the HMAC; the checksum is fixed so only the HMAC fails.
    assert_eq!(receive(&tampered(35, 0x00)), Err(CarpError::BadHmac));
    assert_eq!(receive(&tampered(28, 0x00)), Err(CarpError::BadHmac));
}

#[test]
fn rejects_malformed_ip_headers() {
    // Version 6.
    assert_eq!(receive(&tampered(0, 0x65)), Err(CarpError::BadIpHeader));
    // Header length 16 bytes.
    assert_eq!(receive(&tampered(0, 0x44)), Err(CarpError::BadIpHeader));
    // Total length smaller than the header, or longer than an advertisement.
    for total in [10u16, 60] {
        let mut p = fixture();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        refresh_ip_checksum(&mut p);
        assert_eq!(receive(&p), Err(CarpError::BadLength(total.into())));
    }
    // A fragment (More Fragments set).
    assert_eq!(receive(&tampered(6, 0x20)), Err(CarpError::Fragment));
}

#[test]
fn ethernet_padding_after_the_total_length_is_ignored() {
    let mut p = fixture();
    p.extend_from_slice(&[0u8; 4]);
    let (_, _, carp) = parse_ipv4(&p, DEFAULT_GROUP).unwrap();
    assert_eq!(carp, &fixture()[20..]);
    assert!(receive(&p).is_ok());
}

#[test]
fn ip_options_are_refused_as_the_xdp_program_refuses_them() {
    // A 24-byte header (one 4-byte option: NOPs, then end of list).
    let f = fixture();
    let mut p = vec![0x46];
    p.extend_from_slice(&f[1..20]);
    p.extend_from_slice(&[1, 1, 1, 0]);
    p.extend_from_slice(&f[20..]);
    p[2..4].copy_from_slice(&60u16.to_be_bytes());
    p[10..12].fill(0);
    let sum = checksum(&p[..24]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        parse_ipv4(&p, DEFAULT_GROUP).unwrap_err(),
        CarpError::IpOptions
    );
}

#[test]
fn full_coverage_authenticates_timing_demote_and_sender() {
    let key = secret();
    let vips = [VIP];
    let src = Ipv4Addr::new(10, 0, 0, 1);
    let adv = Advert::signed(1, 1, 100, 0, 42, &vips, &key).sealed(Coverage::All, &vips, &key, src);
    let all = |p: &[u8]| {
        decode_covering(p, DEFAULT_GROUP, |v| {
            (v == 1).then_some((&vips[..], &key, Coverage::All))
        })
    };
    let packet = build_ipv4(src, DEFAULT_GROUP, 1, &adv);
    assert_eq!(all(&packet).unwrap().1, adv);
    // ucarp's check does not accept it: every node of such a group must be vipd.
    assert_eq!(
        decode(&packet, DEFAULT_GROUP, |v| (v == 1)
            .then_some((&vips[..], &key)))
        .unwrap_err(),
        CarpError::BadHmac
    );
    // Better timing, a demote count or another sender, without the key: refused.
    for (offset, value) in [(22, 1u8), (25, 0), (24, 3)] {
        let mut p = packet.to_vec();
        p[offset] = value;
        refresh_checksums(&mut p);
        assert_eq!(all(&p).unwrap_err(), CarpError::BadHmac, "byte {offset}");
    }
    let moved = build_ipv4(Ipv4Addr::new(10, 0, 0, 66), DEFAULT_GROUP, 1, &adv);
    assert_eq!(all(&moved).unwrap_err(), CarpError::BadHmac);
}

#[test]
fn every_error_has_an_operator_message() {
    let all = [
        CarpError::TooShort(3),
        CarpError::BadVersion(3),
        CarpError::BadType(2),
        CarpError::Vrrp,
        CarpError::BadAuthLen(9),
        CarpError::BadTtl(64),
        CarpError::NotCarp(6),
        CarpError::BadDestination(Ipv4Addr::new(224, 0, 0, 19)),
        CarpError::BadChecksum,
        CarpError::BadIpChecksum,
        CarpError::UnknownVhid(9),
        CarpError::BadHmac,
        CarpError::BadIpHeader,
        CarpError::IpOptions,
        CarpError::BadLength(60),
        CarpError::Fragment,
    ];
    for e in all {
        assert!(e.to_string().len() > 15, "{e:?}");
    }
    for e in [KeyError::TooLong(20), KeyError::Empty] {
        assert!(e.to_string().len() > 15, "{e:?}");
    }
    assert!(CarpError::BadHmac.to_string().contains("password"));
    assert!(CarpError::BadTtl(64).to_string().contains("64"));
}

#[test]
fn intervals_and_bow_out() {
    let adv = |advbase, advskew| Advert::signed(1, advbase, advskew, 0, 1, &[VIP], &secret());
    assert_eq!(adv(1, 0).interval(), Duration::from_secs(1));
    assert_eq!(adv(1, 128).interval(), Duration::from_millis(1500));
    // advbase 0: 5/256 s = 19.53125 ms, kept to the microsecond as ucarp's timeval.
    assert_eq!(adv(0, 5).interval(), Duration::from_micros(19_531));
    assert!(adv(BOW_OUT, BOW_OUT).is_bow_out());
    assert!(!adv(BOW_OUT, 0).is_bow_out());
    assert!(!adv(0, BOW_OUT).is_bow_out());
}

#[test]
fn checksum_is_rfc_1071() {
    // RFC 1071's example words 0001 f203 f4f5 f6f7: sum ddf2, checksum 220d.
    assert_eq!(
        checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0x220d
    );
    // An odd byte count pads with a zero byte.
    assert_eq!(checksum(&[0x01]), !0x0100u16);
    assert_eq!(checksum(&fixture()[..20]), 0);
    assert_eq!(checksum(&fixture()[20..]), 0);
}

/// Flips each of the 288 bits of `good` (36 bytes) and checks parse + verify refuse it.
fn assert_every_bit_flip_rejected(good: &[u8; 36], vips: &[Ipv4Addr], key: &Key) {
    assert!(parse_and_verify(good, vips, key).is_ok());
    for bit in 0..36 * 8 {
        let mut b = *good;
        b[bit / 8] ^= 1 << (bit % 8);
        let result = parse_and_verify(&b, vips, key);
        assert!(result.is_err(), "flip of bit {bit} accepted");
    }
}

#[test]
fn every_single_bit_flip_of_the_fixture_is_rejected() {
    let good: [u8; 36] = fixture()[20..].try_into().unwrap();
    assert_every_bit_flip_rejected(&good, &[VIP], &secret());
}

#[test]
fn every_single_bit_flip_of_a_signed_advert_is_rejected() {
    let key = Key::new(b"another password");
    let vips = [VIP, Ipv4Addr::new(192, 168, 7, 1)];
    for (advbase, advskew, demote) in [(1, 0, 0), (0, 1, 0), (254, 254, 255), (255, 255, 3)] {
        let adv = Advert::signed(200, advbase, advskew, demote, u64::MAX, &vips, &key);
        assert_every_bit_flip_rejected(&adv.to_bytes(), &vips, &key);
    }
}

#[test]
fn the_hmac_alone_catches_changes_to_vhid_counter_and_digest() {
    // With the checksum recomputed (a deliberate forgery), every bit of the vhid,
    // counter and HMAC is still caught; advbase, advskew and demote are outside the
    // HMAC in CARP, so only the checksum protects them.
    let good = fixture();
    for bit in 0..36 * 8 {
        let byte = 20 + bit / 8;
        if [20, 23, 26, 27].contains(&byte) {
            continue; // version/type, authlen, checksum: structure, checked by parse.
        }
        let mut p = good.clone();
        p[byte] ^= 1 << (bit % 8);
        refresh_checksums(&mut p);
        let outside_hmac = [22, 24, 25].contains(&byte);
        let carp = &p[20..];
        let result = parse_and_verify(carp, &[VIP], &secret()).map(|_| ());
        if outside_hmac {
            assert_eq!(result, Ok(()), "byte {byte}");
        } else {
            assert_eq!(result, Err(CarpError::BadHmac), "bit {bit}");
        }
    }
}

proptest! {
    #[test]
    fn build_then_parse_round_trips(
        vhid in 1u8..,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
        vips in proptest::collection::vec(any::<[u8; 4]>(), 1..5),
        password in proptest::collection::vec(any::<u8>(), 1..=MAX_PASSWORD),
        src: [u8; 4],
        id: u16,
    ) {
        let vips: Vec<Ipv4Addr> = vips.into_iter().map(Ipv4Addr::from).collect();
        let key = Key::new(&password);
        let adv = Advert::signed(vhid, advbase, advskew, demote, counter, &vips, &key);
        let bytes = adv.to_bytes();
        prop_assert_eq!(checksum(&bytes), 0);
        let parsed = Advert::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, adv);
        prop_assert!(parsed.verify(&vips, &key).is_ok());
        let src = Ipv4Addr::from(src);
        let pkt = build_ipv4(src, DEFAULT_GROUP, id, &adv);
        let (s, d, carp) = parse_ipv4(&pkt, DEFAULT_GROUP).unwrap();
        prop_assert_eq!((s, d), (src, DEFAULT_GROUP));
        prop_assert_eq!(Advert::parse(carp).unwrap(), adv);
        prop_assert_eq!(u16::from_be_bytes([pkt[4], pkt[5]]), id);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
        password in proptest::collection::vec(any::<u8>(), 1..=MAX_PASSWORD),
        bit in 0usize..288,
    ) {
        let key = Key::new(&password);
        let adv = Advert::signed(vhid, advbase, advskew, demote, counter, &[VIP], &key);
        let mut b = adv.to_bytes();
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(parse_and_verify(&b, &[VIP], &key).is_err());
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Advert::parse(&bytes);
        let _ = parse_ipv4(&bytes, DEFAULT_GROUP);
    }
}
