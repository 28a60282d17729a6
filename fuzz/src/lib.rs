//! What the fuzz targets share: the group they receive for, and the checks a validated
//! configuration must pass whatever text or flags it came from.
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use vipd::config::{Config, RawGroup};
use vipd::protocol::carp::{Coverage, DEFAULT_GROUP, Key};

/// The group every receiving target is configured with: vhid 1, one VIP, password
/// "secret", advertisements to 224.0.0.18. It matches the ucarp 1.5.2 capture in the seed
/// corpora, so that an authentic advertisement is there to mutate.
pub const VHID: u8 = 1;
pub const VIPS: [Ipv4Addr; 1] = [Ipv4Addr::new(10, 0, 0, 100)];
pub const GROUP: Ipv4Addr = DEFAULT_GROUP;
pub static KEY: LazyLock<Key> = LazyLock::new(|| Key::new(b"secret"));

/// The lookup `carp::decode` is given: the one configured group.
pub fn lookup(vhid: u8) -> Option<(&'static [Ipv4Addr], &'static Key)> {
    (vhid == VHID).then_some((&VIPS[..], &*KEY))
}

/// The lookup `carp::decode_covering` is given: the one group, its HMAC covering `coverage`.
pub fn lookup_covering(
    coverage: Coverage,
) -> impl Fn(u8) -> Option<(&'static [Ipv4Addr], &'static Key, Coverage)> {
    move |vhid| (vhid == VHID).then_some((&VIPS[..], &*KEY, coverage))
}

/// Password files the configuration targets may read. A path taken from the input is
/// never opened: it is replaced by one of these (chosen by its length), so that no input
/// can make a target read a device, a FIFO or a huge file.
pub fn password_file(requested: &Path) -> PathBuf {
    const FILES: [&str; 5] = [
        "password",       // "secret", then a second line that is ignored
        "password-crlf",  // "secret\r\n"
        "password-empty", // nothing
        "password-long",  // 20 bytes: more than ucarp accepts
        "no-such-file",
    ];
    let pick = FILES[requested.as_os_str().len() % FILES.len()];
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(pick)
}

/// Replaces every group's password file by a fixture (see [`password_file`]).
pub fn sandbox_password_files(groups: &mut [RawGroup]) {
    for g in groups {
        if let Some(p) = &g.password_file {
            g.password_file = Some(password_file(p));
        }
    }
}

/// What validation promises about a configuration it accepts.
pub fn check_valid(config: &Config) {
    assert!(!config.groups.is_empty());
    let mut vhids = HashSet::new();
    let mut vips = HashSet::new();
    for g in &config.groups {
        assert!(!g.interface.is_empty() && g.interface.len() <= 15 && !g.interface.contains('/'));
        assert!(g.vhid >= 1, "vhid {}", g.vhid);
        assert!(
            vhids.insert((&g.interface, g.vhid)),
            "vhid {} twice",
            g.vhid
        );
        assert!(!g.vips.is_empty());
        for v in &g.vips {
            assert!((1..=32).contains(&v.prefix), "{v}");
            assert!(!v.addr.is_multicast() && !v.addr.is_unspecified() && !v.addr.is_broadcast());
            assert!(vips.insert((&g.interface, v.addr)), "{} twice", v.addr);
            // A VIP prints as it parses.
            assert_eq!(v.to_string().parse::<vipd::config::Vip>(), Ok(*v));
        }
        assert!(g.destination.is_multicast() || g.destination.is_broadcast());
        assert!((1..=100).contains(&g.garp_count));
        assert!(g.dead_ratio >= 1 && g.dead_ratio <= 255);
        assert!(g.advbase < 255 && g.advskew < 255);
        assert!(g.advbase > 0 || g.advskew > 0, "an interval of zero");
        if let Some(r) = g.garp_refresh {
            assert!(r.as_millis() >= 10);
        }
    }
}
