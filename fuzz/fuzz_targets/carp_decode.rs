//! The advertisement decoder on arbitrary bytes, as the XDP ring buffer could hand them
//! over: `carp::decode` must refuse without panicking, agree with its layers
//! (`parse_ipv4`, `Advert::parse`, `Advert::verify`) and with `decode_covering` (which
//! differs only in what the HMAC covers), and what it parses must encode back to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::protocol::carp::{self, Advert, CarpError, Coverage};
use vipd_fuzz::{GROUP, KEY, VHID, VIPS, lookup, lookup_covering};

fuzz_target!(|packet: &[u8]| {
    let whole = carp::decode(packet, GROUP, lookup);
    let carp_coverage = carp::decode_covering(packet, GROUP, lookup_covering(Coverage::Carp));
    assert_eq!(carp_coverage, whole);
    // With the HMAC covering more, only the HMAC's verdict may differ.
    match (
        &whole,
        &carp::decode_covering(packet, GROUP, lookup_covering(Coverage::All)),
    ) {
        (Ok(_) | Err(CarpError::BadHmac), Ok(_) | Err(CarpError::BadHmac)) => {}
        (carp, all) => assert_eq!(carp, all),
    }

    // The same checks one layer at a time.
    let layers = carp::parse_ipv4(packet, GROUP).and_then(|(src, dst, payload)| {
        assert_eq!(dst, GROUP);
        assert_eq!(payload.len(), vipd_common::CARP_LEN);
        Ok((src, payload, Advert::parse(payload)?))
    });
    match (&whole, &layers) {
        (Ok((src, advert)), Ok((s, _, a))) => {
            assert_eq!((src, advert), (s, a));
            assert_eq!(advert.vhid, VHID);
            assert_eq!(advert.verify(&VIPS, &KEY), Ok(()));
        }
        (Err(CarpError::UnknownVhid(v)), Ok((_, _, a))) => {
            assert_eq!(*v, a.vhid);
            assert_ne!(*v, VHID);
        }
        (Err(CarpError::BadHmac), Ok((_, _, a))) => {
            assert_eq!(a.vhid, VHID);
            assert_eq!(a.verify(&VIPS, &KEY), Err(CarpError::BadHmac));
        }
        (Err(e), Err(layer)) => assert_eq!(e, layer),
        (whole, layers) => panic!("decode {whole:?} but layer by layer {layers:?}"),
    }

    // What parses encodes back to the same bytes (the checksum may take the other form of
    // zero in one's complement, 0000 or ffff, so it is compared through parsing).
    if let Ok((_, payload, advert)) = layers {
        let bytes = advert.to_bytes();
        assert_eq!(Advert::parse(&bytes), Ok(advert));
        assert_eq!(bytes[..6], payload[..6]);
        assert_eq!(bytes[8..], payload[8..]);
    }

    // The CARP parser alone, on a payload of any length (the XDP program copies a fixed
    // window; a VRRP packet or a truncated one must be told apart, not read past).
    if let Ok(advert) = Advert::parse(packet) {
        assert!(packet.len() >= vipd_common::CARP_LEN);
        assert_eq!(Advert::parse(&advert.to_bytes()), Ok(advert));
        let _ = advert.interval();
    }
});
