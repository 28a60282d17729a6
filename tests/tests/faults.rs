//! Faults that must never leave two owners of a VIP, or none, counted from the client's
//! side. vipd is started the way users type it where the guarantee is about that.
use std::process::Stdio;
use std::time::{Duration, Instant};

use vipd_tests::{Lab, VIP, vipd_bin};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_second_instance_is_refused_before_it_touches_anything() {
    let mut lab = Lab::new("second", 2).unwrap();
    lab.start_node(0, 0, &[]).unwrap();
    lab.start_node(1, 100, &[]).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(1, 1, "BACKUP", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    let before = lab.status(1).unwrap().groups[0].transitions;
    // On the BACKUP, a second vipd exactly as a ucarp user types it: no lab paths.
    let flags = lab.ucarp_flags(1, 0, &["-P"]);
    let mut second = lab.nodes[1]
        .cmd(vipd_bin())
        .args(&flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > 5 * SEC {
            let _ = second.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.expect("the second vipd kept running");
    assert!(!status.success());
    assert!(
        stderr.contains("another vipd") && stderr.contains("already runs"),
        "{stderr}"
    );
    // Nothing changed: the first daemon still hears its peer, and one node answers ARP.
    std::thread::sleep(4 * SEC);
    assert_eq!(lab.state(0, 1), "MASTER");
    assert_eq!(lab.state(1, 1), "BACKUP");
    assert_eq!(lab.status(1).unwrap().groups[0].transitions, before);
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);
}

#[test]
fn a_lone_master_at_the_fastest_interval_answers_every_arp_request() {
    // -b 0 -k 5: the interval is 19.5 ms and master-down is one interval, so every
    // renewal of the lease is due the moment the previous one runs out.
    let mut lab = Lab::new("fastlease", 1).unwrap();
    let mut flags = lab.ucarp_flags(0, 5, &[]);
    let b = flags.iter().position(|f| f == "-b").unwrap();
    flags[b + 1] = "0".into();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    lab.start_vipd(0, &args).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 5 * SEC),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(SEC);
    let probe = lab.arp_probe(VIP, 300, Duration::from_millis(10)).unwrap();
    assert_eq!(probe.sent, 300);
    assert_eq!(probe.answered, 300, "{probe:?}\n{}", lab.log_text(0));
    assert_eq!(probe.macs, vec![lab.nodes[0].mac()]);
    let owners = lab.arp_owners(VIP, 2);
    assert_eq!(owners, vec![lab.nodes[0].mac()]);
}
