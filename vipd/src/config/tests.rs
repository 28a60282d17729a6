use super::*;
use crate::testing::{Scratch, chmod};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("test.toml"), text)
}

#[test]
fn full_example_parses() {
    let c = parse(include_str!("../../../vipd.example.toml")).unwrap();
    assert_eq!(c.groups.len(), 2);
    assert_eq!(c.groups[0].vips[0], "10.0.0.100/24".parse().unwrap());
    assert_eq!(c.groups[1].address_mode, AddressMode::Move);
    assert_eq!(
        c.groups[0].track,
        [
            TrackRef {
                tracker: "web".into(),
                weight: Some(50)
            },
            TrackRef {
                tracker: "uplink".into(),
                weight: None
            }
        ]
    );
    assert_eq!(c.groups[0].demote_mode, DemoteMode::Advskew);
    let names: Vec<_> = c.trackers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web", "uplink", "nginx"]);
    assert_eq!(
        c.trackers[0],
        TrackerConfig {
            name: "web".into(),
            kind: TrackerKind::Http {
                address: "127.0.0.1:80".parse().unwrap(),
                host: "127.0.0.1".into(),
                path: "/health".into(),
                expect_status: 200,
                interval: Duration::from_millis(1000),
                timeout: Duration::from_millis(500),
            },
            rise: 2,
            fall: 2,
        }
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn defaults_follow_ucarp() {
    let c =
        parse("[[group]]\ninterface='eth0'\nvhid=7\nvips=['10.1.1.252']\npassword='x'\n").unwrap();
    let g = &c.groups[0];
    assert_eq!((g.advbase, g.advskew, g.dead_ratio), (1, 0, 3));
    assert_eq!(g.vips[0].prefix, 32);
    assert_eq!(g.destination, Ipv4Addr::new(224, 0, 0, 18));
    assert!(!g.preempt && !g.neutral);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            "[[group]]\ninterface='eth0'\nvhid=0\nvips=['10.0.0.1']\npassword='x'",
            "group[0].vhid: 0 is not in 1..=255",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=300\nvips=['10.0.0.1']\npassword='x'",
            "group[0].vhid: 300 is not in 1..=255",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.300']\npassword='x'",
            "group[0].vips: \"10.0.0.300\" is not an IPv4 address",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1/33']\npassword='x'",
            "group[0].vips: prefix length of \"10.0.0.1/33\" must be 1..=32",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='twenty-bytes-exactly'",
            "group[0].password: password of 20 bytes: ucarp accepts at most 19",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']",
            "group[0].password: a password or a password file is required",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvbase=0",
            "group[0].advbase: advbase 0 needs an advskew above 0",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvskew=255",
            "group[0].advskew: 255 is not in 0..=254",
        ),
        (
            "[[group]]\nvhid=1\nvips=['10.0.0.1']\npassword='x'",
            "group[0].interface: is required",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=[]\npassword='x'",
            "group[0].vips: at least one virtual address is required",
        ),
        ("", "group: the configuration defines no group"),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\n[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.2']\npassword='x'",
            "group[1].vhid: vhid 1 is already used on eth0",
        ),
        (
            "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\n[[group]]\ninterface='eth0'\nvhid=2\nvips=['10.0.0.1']\npassword='x'",
            "group[1].vips: 10.0.0.1 is already in another group on eth0",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{text:?}: got {err:?}, want {want:?}"
        );
    }
    let err =
        parse("[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.1']\npassword='x'\nadvbse=2")
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown field `advbse`"), "{err}");
}

#[test]
fn password_file_first_line() {
    let dir = std::env::temp_dir().join(format!("vipd-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("pw");
    std::fs::write(&p, "secret\nignored\n").unwrap();
    let text = format!(
        "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100']\npassword_file='{}'",
        p.display()
    );
    let c = parse(&text).unwrap();
    let expect = Key::new(b"secret");
    let adv = carp::Advert::signed(1, 1, 0, 0, 1, &[Ipv4Addr::new(10, 0, 0, 100)], &expect);
    assert!(
        adv.verify(&[Ipv4Addr::new(10, 0, 0, 100)], &c.groups[0].key)
            .is_ok()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const BASE: &str = "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100/24']\npassword='x'\n";
/// [`BASE`] with this node's source address, as a unicast group needs.
const UNICAST: &str =
    "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100/24']\npassword='x'\nsrcip='10.0.0.1'\n";

fn unicast_err(extra: &str) -> String {
    parse(&format!("{UNICAST}{extra}")).unwrap_err().to_string()
}

fn err(extra: &str) -> String {
    parse(&format!("{BASE}{extra}")).unwrap_err().to_string()
}

#[test]
fn srcip_must_be_this_hosts_unicast_address() {
    for (ip, what) in [
        ("0.0.0.0", "the unspecified address"),
        ("255.255.255.255", "the broadcast address"),
        ("224.0.0.18", "a multicast address"),
        ("239.1.2.3", "a multicast address"),
        ("127.0.0.1", "a loopback address"),
        ("127.5.5.5", "a loopback address"),
        ("10.0.0.100", "one of the group's virtual addresses"),
    ] {
        assert_eq!(
            err(&format!("srcip='{ip}'")),
            format!("group[0].srcip: {ip} is {what}; give this host's own unicast address")
        );
    }
    let c = parse(&format!("{BASE}srcip='10.0.0.1'")).unwrap();
    assert_eq!(c.groups[0].srcip, Some(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn unicast_peers_are_other_nodes_ipv4_addresses_each_once() {
    let c = parse(&format!("{UNICAST}peers=['10.0.0.2', '10.0.0.3']")).unwrap();
    let g = &c.groups[0];
    assert!(g.unicast() && g.peer_ttl_check);
    assert_eq!(
        g.peers,
        [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
    );
    assert_eq!(
        g.receive_destination(Ipv4Addr::new(10, 0, 0, 1)),
        Ipv4Addr::new(10, 0, 0, 1)
    );
    let c = parse(&format!(
        "{UNICAST}peers=['10.0.0.2']\npeer_ttl_check=false"
    ))
    .unwrap();
    assert!(!c.groups[0].peer_ttl_check);
    // A multicast group receives at its group whatever its own address.
    let c = parse(BASE).unwrap();
    assert!(!c.groups[0].unicast());
    assert_eq!(
        c.groups[0].receive_destination(Ipv4Addr::new(10, 0, 0, 1)),
        carp::DEFAULT_GROUP
    );
    let others = "list the other nodes' own addresses";
    for (peers, what) in [
        ("'0.0.0.0'", "0.0.0.0 is the unspecified address"),
        (
            "'255.255.255.255'",
            "255.255.255.255 is the broadcast address",
        ),
        (
            "'224.0.0.18'",
            "224.0.0.18 is a multicast address (leave peers out to advertise to a group)",
        ),
        ("'127.0.0.1'", "127.0.0.1 is a loopback address"),
        (
            "'10.0.0.100'",
            "10.0.0.100 is one of the group's virtual addresses",
        ),
        ("'10.0.0.2', '10.0.0.2'", "10.0.0.2 is listed twice"),
    ] {
        assert_eq!(
            unicast_err(&format!("peers=[{peers}]")),
            format!("group[0].peers: {what}; {others}")
        );
    }
    assert_eq!(
        unicast_err("peers=['10.0.0.1']"),
        format!("group[0].peers: 10.0.0.1 is this node's own source address (srcip); {others}")
    );
    assert_eq!(
        unicast_err("peers=['fd00::2']"),
        "group[0].peers: fd00::2 is an IPv6 address; the group advertises over IPv4, so its \
         peers must be IPv4 addresses"
    );
    assert_eq!(
        unicast_err("peers=['node2']"),
        "group[0].peers: \"node2\" is not an IP address"
    );
    for other in ["multicast='239.1.1.1'", "broadcast=true"] {
        assert!(
            unicast_err(&format!("peers=['10.0.0.2']\n{other}"))
                .starts_with("group[0].peers: unicast peers replace the multicast group"),
            "{other}"
        );
    }
    assert!(
        err("peers=['10.0.0.2']").starts_with("group[0].srcip: is required with unicast peers")
    );
    assert_eq!(
        err("peer_ttl_check=false"),
        "group[0].peer_ttl_check: applies to unicast peers only; give peers too"
    );
}

#[test]
fn every_timeout_and_interval_is_above_zero_and_at_most_a_day() {
    for key in ["garp_interval_ms", "script_timeout_ms"] {
        assert_eq!(
            err(&format!("{key}=0")),
            format!("group[0].{key}: 0 must be above 0 (milliseconds)")
        );
        assert_eq!(
            err(&format!("{key}=86400001")),
            format!("group[0].{key}: 86400001 is above 86400000 (one day, in milliseconds)")
        );
        parse(&format!("{BASE}{key}=1")).unwrap();
    }
    assert_eq!(
        err("garp_refresh_ms=0"),
        "group[0].garp_refresh_ms: 0 is below 10 (milliseconds)"
    );
    assert_eq!(
        err("garp_refresh_ms=9"),
        "group[0].garp_refresh_ms: 9 is below 10 (milliseconds)"
    );
    assert!(err("garp_refresh_ms=9223372036854775807").contains("is above 86400000"));
    let c = parse(&format!("{BASE}garp_refresh_ms=10")).unwrap();
    assert_eq!(c.groups[0].garp_refresh, Some(Duration::from_millis(10)));
    assert_eq!(c.groups[0].script_timeout, Duration::from_secs(10));
}

#[test]
fn scripts_others_could_change_are_refused_by_default() {
    let s = Scratch::new("scripts");
    let up = s.file("up.sh", "#!/bin/sh\n", 0o755);
    let c = parse(&format!("{BASE}upscript='{}'", up.display())).unwrap();
    assert_eq!(c.groups[0].upscript.as_deref(), Some(up.as_path()));
    assert!(c.groups[0].script_user.is_none(), "root by default");
    let down = s.file("down.sh", "#!/bin/sh\n", 0o777);
    let e = err(&format!("downscript='{}'", down.display()));
    assert!(
        e.starts_with(&format!(
            "group[0].downscript: {} is writable by group or others (mode 777); a script \
             and every directory above it must be changeable only by root",
            down.display()
        )),
        "{e}"
    );
    // The check can be turned off.
    parse(&format!(
        "{BASE}downscript='{}'\nscript_security=false",
        down.display()
    ))
    .unwrap();
    // Missing scripts stay an error either way.
    for security in ["true", "false"] {
        let e = err(&format!(
            "upscript='{}/nope.sh'\nscript_security={security}",
            s.0.display()
        ));
        assert!(e.ends_with("nope.sh does not exist"), "{e}");
    }
}

#[test]
fn script_user_is_resolved_when_the_configuration_is_read() {
    let c = parse(&format!("{BASE}script_user='root'")).unwrap();
    let u = c.groups[0].script_user.as_ref().unwrap();
    assert_eq!((u.name.as_str(), u.uid, u.gid), ("root", 0, 0));
    assert_eq!(
        err("script_user='no-such-user-vipd'"),
        "group[0].script_user: no such user: \"no-such-user-vipd\""
    );
    // A script owned by the script user is accepted, by anyone else refused.
    if let Ok(nobody) = ScriptUser::lookup("nobody") {
        let s = Scratch::new("owner");
        let up = s.file("up.sh", "#!/bin/sh\n", 0o755);
        std::os::unix::fs::chown(&up, Some(nobody.uid), None).unwrap();
        parse(&format!(
            "{BASE}upscript='{}'\nscript_user='nobody'",
            up.display()
        ))
        .unwrap();
        let e = err(&format!("upscript='{}'", up.display()));
        assert!(
            e.contains(&format!(
                "{} is owned by uid {}, not by root;",
                up.display(),
                nobody.uid
            )),
            "{e}"
        );
    }
}

#[test]
fn passwords_others_can_read_are_warned_about() {
    let s = Scratch::new("secrets");
    let pw = s.file("pw", "secret\n", 0o644);
    let toml = format!(
        "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100']\npassword_file='{}'\n",
        pw.display()
    );
    let c = parse(&toml).unwrap();
    assert_eq!(
        c.warnings,
        [format!(
            "password file {} is readable by group or others (mode 644); chmod 600 it",
            pw.display()
        )]
    );
    chmod(&pw, 0o600);
    assert!(parse(&toml).unwrap().warnings.is_empty());
    // A configuration file is read with Config::load: warned about when it holds a
    // password itself and others can read it.
    let with_password = s.file("a.toml", BASE, 0o644);
    let w = Config::load(&with_password).unwrap().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "{} holds a password and is readable",
            with_password.display()
        )),
        "{w:?}"
    );
    chmod(&with_password, 0o640);
    assert_eq!(Config::load(&with_password).unwrap().warnings.len(), 1);
    chmod(&with_password, 0o600);
    assert!(Config::load(&with_password).unwrap().warnings.is_empty());
    let without = s.file("b.toml", &toml, 0o644);
    assert!(Config::load(&without).unwrap().warnings.is_empty());
}

#[test]
fn facilities_are_ucarps() {
    assert_eq!(
        syslog_facility("daemon").unwrap() as u8,
        syslog::Facility::LOG_DAEMON as u8
    );
    assert!(
        syslog_facility("nope")
            .unwrap_err()
            .to_string()
            .starts_with("facility: unknown syslog facility \"nope\"")
    );
}

/// A group tracking `track`, then `trackers`.
fn with_trackers(track: &str, trackers: &str) -> Result<Config, ConfigError> {
    parse(&format!("{BASE}track = [{track}]\n{trackers}"))
}

fn tracker_err(track: &str, trackers: &str) -> String {
    with_trackers(track, trackers).unwrap_err().to_string()
}

const TCP: &str = "[[tracker]]\nname='db'\ntype='tcp'\naddress='127.0.0.1:5432'\n";

#[test]
fn trackers_are_defaulted_and_shared_by_name() {
    let text = format!(
        "{BASE}track = [{{ tracker = 'db' }}, {{ tracker = 'nic', weight = 20 }}]\n\
         demote_mode = 'demote'\n\
         [[group]]\ninterface='eth0'\nvhid=2\nvips=['10.0.0.101']\npassword='x'\n\
         track = [{{ tracker = 'db', weight = 254 }}]\n\
         {TCP}\
         [[tracker]]\nname='nic'\ntype='interface'\ninterface='eth1'\n\
         [[tracker]]\nname='pid'\ntype='process'\npidfile='/run/x.pid'\nfall=3\n\
         [[tracker]]\nname='h'\ntype='http'\naddress='[::1]:8080'\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.groups[0].demote_mode, DemoteMode::Demote);
    assert_eq!(c.groups[1].demote_mode, DemoteMode::Advskew);
    assert_eq!(c.groups[1].track[0].weight, Some(254));
    assert_eq!(
        c.trackers[0],
        TrackerConfig::new(
            "db",
            TrackerKind::Tcp {
                address: "127.0.0.1:5432".parse().unwrap(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
            }
        )
    );
    assert_eq!(
        c.trackers[1].kind,
        TrackerKind::Interface {
            interface: "eth1".into()
        }
    );
    assert_eq!(c.trackers[2].fall, 3);
    let TrackerKind::Http {
        host,
        path,
        expect_status,
        ..
    } = &c.trackers[3].kind
    else {
        panic!("{:?}", c.trackers[3]);
    };
    assert_eq!(
        (host.as_str(), path.as_str(), *expect_status),
        ("[::1]:8080", "/", 200)
    );
    assert_eq!(
        c.warnings,
        [
            "tracker \"pid\" is used by no group",
            "tracker \"h\" is used by no group"
        ]
    );
    // ucarp's flags have no trackers to name.
    let raw = RawGroup {
        interface: Some("eth0".into()),
        vhid: Some(1),
        vips: vec!["10.0.0.1".into()],
        password: Some("x".into()),
        track: vec![TrackRef {
            tracker: "db".into(),
            weight: None,
        }],
        ..RawGroup::default()
    };
    assert_eq!(
        Config::from_raw(vec![raw], |_| "--".into())
            .unwrap_err()
            .to_string(),
        "--track: no tracker is named \"db\""
    );
}

#[test]
fn tracker_errors_name_the_field() {
    let t = |body: &str| format!("[[tracker]]\nname='t'\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (t("type='tcp'"), "tracker[0].address: is required"),
        (
            "[[tracker]]\ntype='tcp'\naddress='127.0.0.1:1'".into(),
            "tracker[0].name: is required",
        ),
        (
            "[[tracker]]\nname='a b'\ntype='tcp'\naddress='127.0.0.1:1'".into(),
            "tracker[0].name: \"a b\" must be 1 to 64 letters, digits, '-', '_' or '.'",
        ),
        (
            t(""),
            "tracker[0].type: is required (interface, process, tcp, http, script or file)",
        ),
        (
            t("type='htp'"),
            "tracker[0].type: unknown tracker type \"htp\" (interface, process, tcp, http, script or file)",
        ),
        (
            t("type='tcp'\naddress='localhost:80'"),
            "tracker[0].address: \"localhost:80\" is not an address with a port (127.0.0.1:80, [::1]:80)",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:0'"),
            "tracker[0].address: \"127.0.0.1:0\" has port 0",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=5"),
            "tracker[0].interval_ms: 5 is below 10 (milliseconds)",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=100\ntimeout_ms=200"),
            "tracker[0].timeout_ms: 200 is above interval_ms (100)",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\ntimeout_ms=0"),
            "tracker[0].timeout_ms: 0 must be above 0 (milliseconds)",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\ninterval_ms=86400001"),
            "tracker[0].interval_ms: 86400001 is above 86400000 (one day, in milliseconds)",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\nrise=0"),
            "tracker[0].rise: 0 must be at least 1",
        ),
        (
            t("type='tcp'\naddress='127.0.0.1:1'\npath='/x'"),
            "tracker[0].path: is not a key of tcp trackers",
        ),
        (
            t("type='interface'\ninterface='eth1'\ninterval_ms=100"),
            "tracker[0].interval_ms: is not a key of interface trackers",
        ),
        (
            t("type='interface'\ninterface='eth1'\nfall=2"),
            "tracker[0].fall: interface trackers report each change as it happens; rise and fall (other than 1) are for process, tcp, http and script trackers",
        ),
        (t("type='interface'"), "tracker[0].interface: is required"),
        (
            t("type='interface'\ninterface='a-very-long-name0'"),
            "tracker[0].interface: \"a-very-long-name0\" is not an interface name",
        ),
        (
            t("type='process'"),
            "tracker[0].process_name: give one of process_name, process_cmdline or pidfile",
        ),
        (
            t("type='process'\nprocess_name='a'\npidfile='/run/a.pid'"),
            "tracker[0].pidfile: give only one of process_name, process_cmdline or pidfile (process_name is given too)",
        ),
        (
            t("type='process'\nprocess_name='/usr/sbin/nginx'"),
            "tracker[0].process_name: \"/usr/sbin/nginx\" is not a process name (/proc/PID/comm, no path)",
        ),
        (
            t("type='process'\nprocess_cmdline=''"),
            "tracker[0].process_cmdline: an empty command line would match every process",
        ),
        (
            t("type='http'\naddress='127.0.0.1:80'\npath='health'"),
            "tracker[0].path: \"health\" must start with /",
        ),
        (
            t("type='http'\naddress='127.0.0.1:80'\npath='/a b'"),
            "tracker[0].path: \"/a b\" must be non-empty, without spaces or control characters",
        ),
        (
            t("type='http'\naddress='127.0.0.1:80'\nhost=\"a\\r\\nX: y\""),
            "tracker[0].host: \"a\\r\\nX: y\" must be non-empty, without spaces or control characters",
        ),
        (
            t("type='http'\naddress='127.0.0.1:80'\nexpect_status=99"),
            "tracker[0].expect_status: 99 is not in 100..=599",
        ),
        (t("type='script'"), "tracker[0].command: is required"),
        (
            t("type='script'\ncommand='check.sh'"),
            "tracker[0].command: check.sh is not an absolute path",
        ),
        (
            t("type='script'\ncommand='/nonexistent-vipd/check.sh'"),
            "tracker[0].command: /nonexistent-vipd/check.sh does not exist",
        ),
        (
            t("type='script'\ncommand='/bin/sh'\nscript_user='no-such-user-vipd'"),
            "tracker[0].script_user: no such user: \"no-such-user-vipd\"",
        ),
        (
            t("type='script'\ncommand='/bin/sh'\nargs=['a', \"b\\u0000\"]"),
            "tracker[0].args: argument 1 holds a NUL byte",
        ),
        (t("type='file'"), "tracker[0].path: is required"),
        (
            t("type='file'\npath='/nonexistent-vipd/w'"),
            "tracker[0].path: directory /nonexistent-vipd does not exist",
        ),
        (
            t("type='file'\npath='/tmp/w'\nexpect_status=200"),
            "tracker[0].expect_status: is not a key of file trackers",
        ),
        (
            format!("{TCP}{TCP}"),
            "tracker[1].name: \"db\" is already the name of tracker[0]",
        ),
    ];
    for (trackers, want) in cases {
        let e = tracker_err("", &trackers);
        assert_eq!(e, want, "{trackers:?}");
    }
}

#[test]
fn track_references_are_checked() {
    assert_eq!(
        tracker_err("{ tracker = 'dbx' }", TCP),
        "group[0].track: no tracker is named \"dbx\""
    );
    assert_eq!(
        tracker_err("{ tracker = 'db' }, { tracker = 'db', weight = 3 }", TCP),
        "group[0].track: tracker \"db\" is listed twice"
    );
    for w in [0, 255] {
        assert_eq!(
            tracker_err(&format!("{{ tracker = 'db', weight = {w} }}"), TCP),
            format!(
                "group[0].track: weight {w} of tracker \"db\" is not in 1..=254 (leave the \
                 weight out to go to FAULT while the tracker is down)"
            )
        );
    }
    let e = tracker_err("{ tracker = 'db', wieght = 3 }", TCP);
    assert!(e.contains("unknown field `wieght`"), "{e}");
    let e = err("demote_mode = 'skew'");
    assert!(e.contains("unknown variant `skew`"), "{e}");
    with_trackers("{ tracker = 'db', weight = 1 }", TCP).unwrap();
}

#[test]
fn notify_and_tracker_scripts_are_checked_as_scripts_are() {
    let s = Scratch::new("notify");
    let ok = s.file("notify.sh", "#!/bin/sh\n", 0o755);
    let open = s.file("open.sh", "#!/bin/sh\n", 0o777);
    let c = parse(&format!("{BASE}notify='{}'", ok.display())).unwrap();
    assert_eq!(c.groups[0].notify.as_deref(), Some(ok.as_path()));
    assert!(parse(BASE).unwrap().groups[0].notify.is_none());
    let e = err(&format!("notify='{}'", open.display()));
    assert!(
        e.starts_with(&format!(
            "group[0].notify: {} is writable by group or others (mode 777); a script",
            open.display()
        )),
        "{e}"
    );
    parse(&format!(
        "{BASE}notify='{}'\nscript_security=false",
        open.display()
    ))
    .unwrap();
    assert!(err(&format!("notify='{}/nope.sh'", s.0.display())).ends_with("does not exist"));
    let script = |path: &Path, extra: &str| {
        format!(
            "[[tracker]]\nname='chk'\ntype='script'\ncommand='{}'\nargs=['-q']\n\
             interval_ms=200\ntimeout_ms=150\n{extra}",
            path.display()
        )
    };
    let c = with_trackers("{ tracker = 'chk' }", &script(&ok, "script_user='root'")).unwrap();
    assert_eq!(
        c.trackers[0].kind,
        TrackerKind::Script {
            command: ok.clone(),
            args: vec!["-q".into()],
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(150),
            user: Some(ScriptUser::lookup("root").unwrap()),
        }
    );
    let e = tracker_err("{ tracker = 'chk' }", &script(&open, ""));
    assert!(
        e.starts_with(&format!(
            "tracker[0].command: {} is writable by group or others",
            open.display()
        )),
        "{e}"
    );
    with_trackers(
        "{ tracker = 'chk' }",
        &script(&open, "script_security=false"),
    )
    .unwrap();
}

#[test]
fn file_trackers_warn_when_others_could_set_the_value() {
    let s = Scratch::new("weight");
    let file = |dir: &Path| {
        format!(
            "[[tracker]]\nname='w'\ntype='file'\npath='{}/weight'\n",
            dir.display()
        )
    };
    let c = with_trackers("{ tracker = 'w', weight = 10 }", &file(&s.0)).unwrap();
    assert_eq!(
        c.trackers[0].kind,
        TrackerKind::File {
            path: s.0.join("weight")
        }
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    chmod(&s.0, 0o1777);
    let c = with_trackers("{ tracker = 'w' }", &file(&s.0)).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("tracker \"w\": others than root can write"));
    chmod(&s.0, 0o755);
    assert!(
        tracker_err(
            "",
            &format!(
                "[[tracker]]\nname='w'\ntype='file'\npath='{}/'\n",
                s.0.display()
            )
        )
        .starts_with("tracker[0].path:")
    );
}

#[test]
fn vips_out_of_ascending_order_are_warned_about() {
    let toml = |vips: &str| {
        parse(&format!(
            "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [{vips}]\npassword = \"x\"\n"
        ))
        .unwrap()
    };
    let c = toml(r#""10.0.0.100/24", "10.0.0.9/24""#);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("not in ascending order")),
        "{:?}",
        c.warnings
    );
    let c = toml(r#""10.0.0.9/24", "10.0.0.100/24""#);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}
