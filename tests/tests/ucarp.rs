//! vipd beside Debian's real ucarp 1.5.2 in one group: same vhid and password, ucarp's
//! scripts adding and removing the VIP as ucarp users write them.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vipd_tests::{Lab, SUBNET_PREFIX, VIP, read_lines};

const SEC: Duration = Duration::from_secs(1);

/// Starts ucarp (advbase 1) on node `i`; returns its pid and the file its scripts log to.
fn start_ucarp(
    lab: &mut Lab,
    i: usize,
    advskew: u8,
    password: &str,
    extra: &[&str],
) -> (u32, PathBuf) {
    lab.start_ucarp(i, 1, advskew, password, extra).unwrap()
}

fn rejected_total(lab: &Lab, i: usize) -> u64 {
    lab.status(i).unwrap().groups[0]
        .rejected
        .iter()
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn vipd_master_beside_ucarp_backup() {
    let mut lab = Lab::new("ucbackup", 2).unwrap();
    lab.start_node(0, 0, &[]).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let (ucarp, ev) = start_ucarp(&mut lab, 1, 100, "secret", &[]);
    std::thread::sleep(5 * SEC);
    // vipd is MASTER and the only ARP owner; ucarp stayed BACKUP (its up script never ran).
    assert_eq!(lab.state(0, 1), "MASTER");
    assert!(
        !read_lines(&ev).contains(&"up".to_owned()),
        "{:?}",
        read_lines(&ev)
    );
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);
    // A CARP BACKUP is silent: nothing reached vipd, and nothing was rejected.
    let st = lab.status(0).unwrap();
    assert_eq!(rejected_total(&lab, 0), 0, "{st:?}");

    // Graceful stop: ucarp honours the bow-out (interval 255 s exceeds its master-down) and
    // takes over without waiting for master-down (3.4 s). It sees the bow-out up to one
    // second late: ucarp reads through libpcap with a 1000 ms buffer timeout
    // (CAPTURE_TIMEOUT in ucarp.h), and the memory-mapped capture hands packets over only
    // when that timer retires the block.
    let pid = st.pid;
    let stop = Instant::now();
    assert!(lab.signal(pid, libc::SIGTERM, 5 * SEC));
    assert!(Lab::wait_for(5 * SEC, || read_lines(&ev).contains(&"up".to_owned())));
    let took = stop.elapsed();
    eprintln!("ucarp took over {took:?} after vipd's graceful stop");
    assert!(
        took < Duration::from_millis(1500),
        "ucarp waited {took:?} (master-down is 3.4 s): the bow-out was not honoured"
    );
    assert!(lab.nodes[1].has_addr(VIP));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);

    // vipd restarted without -P: stays BACKUP beside ucarp MASTER although its skew is lower.
    lab.start_node(0, 0, &[]).unwrap();
    assert!(
        lab.wait_state(0, 1, "BACKUP", 4 * SEC),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(4 * SEC);
    assert_eq!(lab.state(0, 1), "BACKUP");
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);
    let _ = ucarp;
}

#[test]
fn ucarp_takes_over_from_killed_vipd_and_vipd_preempts_back() {
    let mut lab = Lab::new("uckill", 2).unwrap();
    lab.start_node(0, 0, &[]).unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", 8 * SEC));
    let (_ucarp, ev) = start_ucarp(&mut lab, 1, 100, "secret", &[]);
    std::thread::sleep(2 * SEC);
    let pid = lab.status(0).unwrap().pid;
    let kill = Instant::now();
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    assert!(Lab::wait_for(6 * SEC, || read_lines(&ev).contains(&"up".to_owned())));
    let took = kill.elapsed();
    // ucarp's master-down: 3 * 1 + 100/256 s, plus its one-second timer granularity.
    assert!(
        took < Duration::from_secs_f64(3.0 + 100.0 / 256.0 + 1.2),
        "{took:?}"
    );
    // vipd's node stopped answering ARP (lease expired) although the VIP is still there.
    std::thread::sleep(Duration::from_millis(500));
    assert!(lab.nodes[0].has_addr(VIP));
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
    // Restarted with -P, vipd takes the VIP back and ucarp steps down (its down script runs).
    lab.start_node(0, 0, &["-P"]).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(Lab::wait_for(4 * SEC, || read_lines(&ev)
        .last()
        .map(String::as_str)
        == Some("down")));
    assert!(Lab::wait_for(2 * SEC, || !lab.nodes[1].has_addr(VIP)));
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[0].mac()]);
}

#[test]
fn vipd_backup_beside_ucarp_master() {
    let mut lab = Lab::new("ucmaster", 2).unwrap();
    let (ucarp, ev) = start_ucarp(&mut lab, 0, 0, "secret", &[]);
    assert!(Lab::wait_for(8 * SEC, || read_lines(&ev).contains(&"up".to_owned())));
    lab.start_node(1, 100, &[]).unwrap();
    assert!(lab.wait_state(1, 1, "BACKUP", 4 * SEC));
    std::thread::sleep(4 * SEC);
    assert_eq!(lab.state(1, 1), "BACKUP");
    assert_eq!(
        lab.status(1).unwrap().groups[0].master.as_deref(),
        Some("10.0.0.1")
    );
    // vipd stays silent on ARP: only ucarp's node answers.
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);
    // Over this run vipd accepted every advertisement ucarp sent.
    assert!(lab.status(1).unwrap().groups[0].adverts_received >= 3);
    assert_eq!(rejected_total(&lab, 1), 0);

    // ucarp dies: vipd takes over and the client's pings resume.
    let probe = lab
        .start_probe(VIP, Duration::from_millis(20), 350)
        .unwrap();
    std::thread::sleep(SEC);
    assert!(lab.signal(ucarp, libc::SIGKILL, 2 * SEC));
    // ucarp's script does not run when it is killed: the VIP stays on its node, as it
    // would on a crashed host that still answered. Remove it as a dead host would.
    lab.nodes[0]
        .ok(&format!("ip addr del {VIP}/{SUBNET_PREFIX} dev eth0"))
        .unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 6 * SEC));
    let report = lab.finish_probe(probe).unwrap();
    assert!(
        report.received > 0 && report.lost() < report.sent / 2,
        "{report:?}"
    );
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);
    lab.client
        .ok(&format!("ping -c 3 -i 0.1 -W 1 {VIP}"))
        .unwrap();

    // ucarp restarts without -P: it stays BACKUP (no up script), vipd stays MASTER.
    std::fs::write(&ev, "").unwrap();
    start_ucarp(&mut lab, 0, 0, "secret", &[]);
    std::thread::sleep(5 * SEC);
    assert!(
        !read_lines(&ev).contains(&"up".to_owned()),
        "{:?}",
        read_lines(&ev)
    );
    assert_eq!(lab.state(1, 1), "MASTER");
}

#[test]
fn ucarp_with_wrong_password_is_ignored() {
    let mut lab = Lab::new("ucpass", 2).unwrap();
    lab.start_node(0, 100, &[]).unwrap();
    let (_u, ev) = start_ucarp(&mut lab, 1, 0, "not-the-secret", &[]);
    assert!(Lab::wait_for(8 * SEC, || read_lines(&ev).contains(&"up".to_owned())));
    // vipd ignores the stranger: it becomes MASTER of its own group after master-down.
    assert!(
        lab.wait_state(0, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(2 * SEC);
    let st = lab.status(0).unwrap();
    let bad: u64 = st.groups[0]
        .rejected
        .iter()
        .filter(|(r, _)| r == "bad_hmac")
        .map(|(_, n)| *n)
        .sum();
    assert!(bad >= 3, "{st:?}");
    assert_eq!(st.groups[0].adverts_received, 0);
    let log = lab.log_text(0);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("advertisements rejected") && l.contains("10.0.0.2"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "rejections are logged as counts at most once per 10 s: {lines:?}"
    );
    assert!(lines[0].contains("bad_hmac"));
}

#[test]
fn mixed_three_nodes_take_over_in_skew_order() {
    let mut lab = Lab::new("ucthree", 3).unwrap();
    lab.start_node(0, 10, &[]).unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", 8 * SEC));
    lab.start_node(1, 50, &[]).unwrap();
    let (_u, ev) = start_ucarp(&mut lab, 2, 100, "secret", &[]);
    assert!(lab.wait_state(1, 1, "BACKUP", 4 * SEC));
    std::thread::sleep(4 * SEC);
    let pid = lab.status(0).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "vipd advskew 50 is next"
    );
    std::thread::sleep(2 * SEC);
    assert!(
        !read_lines(&ev).contains(&"up".to_owned()),
        "ucarp (advskew 100) stays BACKUP"
    );
    let pid = lab.status(1).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    assert!(
        Lab::wait_for(6 * SEC, || read_lines(&ev).contains(&"up".to_owned())),
        "then ucarp"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[2].mac()]);
}
