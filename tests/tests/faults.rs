//! Faults that must never leave two owners of a VIP, or none, counted from the client's
//! side. Every test starts vipd exactly as users type it (`ip netns exec NS vipd -i eth0
//! ...`, no control socket or bpffs path of the lab).
use std::process::Stdio;
use std::time::{Duration, Instant};

use vipd_tests::{Lab, VIP, vipd_bin};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_second_instance_is_refused_before_it_touches_anything() {
    let lab = Lab::pair_as_user("second");
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
    lab.as_user = true;
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

/// ucarp-style flags for node `i` (1-based addresses), as a user types them.
fn user_flags(lab: &Lab, i: usize, advskew: u8) -> Vec<String> {
    lab.ucarp_flags(i, advskew, &[])
}

#[test]
fn a_master_killed_under_ip_netns_exec_without_a_shared_bpffs_stops_answering() {
    let mut lab = Lab::new("kill9user", 2).unwrap();
    lab.as_user = true;
    let f0 = user_flags(&lab, 0, 0);
    let f1 = user_flags(&lab, 1, 100);
    let a0: Vec<&str> = f0.iter().map(String::as_str).collect();
    let a1: Vec<&str> = f1.iter().map(String::as_str).collect();
    let master = lab.start_vipd_as_user(0, &a0).unwrap();
    lab.start_vipd_as_user(1, &a1).unwrap();
    assert!(
        lab.wait_state_as_user(0, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state_as_user(1, "BACKUP", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[0].mac()]);
    assert!(lab.signal(master, libc::SIGKILL, 2 * SEC));
    assert!(
        lab.wait_state_as_user(1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    // From the client: only the new master answers, now and for several master-downs
    // (a dead vipd's program is still attached and its lease has run out).
    for _ in 0..3 {
        assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
    }
    let probe = lab.arp_probe(VIP, 200, Duration::from_millis(10)).unwrap();
    assert_eq!(probe.macs, vec![lab.nodes[1].mac()], "{probe:?}");
    assert_eq!(probe.answered, probe.sent, "{probe:?}");
    // Restarted as typed, it adopts the program it finds on the interface and stays BACKUP.
    let restarted = lab.start_vipd_as_user(0, &a0).unwrap();
    assert!(
        lab.wait_state_as_user(0, "BACKUP", 5 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.log_text(0).contains("adopted the maps"),
        "{}",
        lab.log_text(0)
    );
    // Every map of the same build has the shape the programs declare: all are adopted.
    assert!(
        !lab.log_text(0).contains("not adopted"),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(2 * SEC);
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
    // The VIP the killed vipd added is known as vipd's (address protocol 112): a clean stop
    // removes it and detaches the programs, as if vipd had never been killed.
    assert!(lab.nodes[0].has_addr(VIP));
    assert!(lab.signal(restarted, libc::SIGTERM, 5 * SEC));
    assert!(!lab.nodes[0].has_addr(VIP), "{}", lab.log_text(0));
    let xdp = lab.nodes[0].ok("ip -d link show dev eth0").unwrap();
    let tc = lab.nodes[0].ok("tc filter show dev eth0 ingress").unwrap();
    assert!(
        !xdp.contains("prog/xdp") && tc.trim().is_empty(),
        "{xdp}\n{tc}"
    );
    assert!(
        !lab.log_text(0).contains("VIPs stay configured"),
        "{}",
        lab.log_text(0)
    );
}

#[test]
fn a_clean_stop_never_leaves_a_hand_added_vip_answered() {
    let mut lab = Lab::new("handvip", 2).unwrap();
    lab.as_user = true;
    let f0 = user_flags(&lab, 0, 0);
    let f1 = user_flags(&lab, 1, 100);
    let a0: Vec<&str> = f0.iter().map(String::as_str).collect();
    let a1: Vec<&str> = f1.iter().map(String::as_str).collect();
    // The VIP is already configured by hand on the backup (as ifupdown or an old ucarp
    // set-up leaves it): vipd does not own the address and does not remove it.
    lab.nodes[1]
        .ok(&format!("ip addr add {VIP}/24 dev eth0"))
        .unwrap();
    lab.start_vipd_as_user(0, &a0).unwrap();
    let backup = lab.start_vipd_as_user(1, &a1).unwrap();
    assert!(
        lab.wait_state_as_user(0, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state_as_user(1, "BACKUP", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(
        lab.signal(backup, libc::SIGTERM, 5 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(
        lab.nodes[1].has_addr(VIP),
        "vipd removed an address it did not add"
    );
    assert!(
        lab.log_text(1).contains("stay attached"),
        "{}",
        lab.log_text(1)
    );
    for _ in 0..3 {
        assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);
    }
    // Without the hand-added address, a clean stop leaves nothing attached.
    lab.nodes[1]
        .ok(&format!("ip addr del {VIP}/24 dev eth0"))
        .unwrap();
    let again = lab.start_vipd_as_user(1, &a1).unwrap();
    assert!(
        lab.wait_state_as_user(1, "BACKUP", 5 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(lab.signal(again, libc::SIGTERM, 5 * SEC));
    let xdp = lab.nodes[1].ok("ip -d link show dev eth0").unwrap();
    assert!(!xdp.contains("prog/xdp"), "{xdp}");
}

#[test]
fn interfaces_are_followed_by_identity_not_name() {
    let mut lab = Lab::pair_as_user("ifident");
    // Renamed under a running vipd: the programs stay on the device and vipd follows it.
    // A rename needs the link down, so the MASTER steps down for that moment and either
    // node may hold the VIP afterwards (whichever master-down ran out first): one does.
    let macs = [lab.nodes[0].mac(), lab.nodes[1].mac()];
    lab.nodes[0]
        .ok("ip link set eth0 down && ip link set eth0 name lan0 && ip link set lan0 up")
        .unwrap();
    std::thread::sleep(5 * SEC);
    let states = [lab.state(0, 1), lab.state(1, 1)];
    let masters: Vec<usize> = (0..2).filter(|&i| states[i] == "MASTER").collect();
    assert_eq!(masters.len(), 1, "{states:?}\n{}", lab.log_text(0));
    assert!(
        states.iter().all(|s| s == "MASTER" || s == "BACKUP"),
        "{states:?}"
    );
    assert_eq!(lab.arp_owners(VIP, 3), vec![macs[masters[0]].clone()]);
    // Still running, on the same device under its new name.
    let ifindex: u32 = lab.nodes[0]
        .ok("cat /sys/class/net/lan0/ifindex")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(lab.status(0).unwrap().interfaces[0].ifindex, ifindex);
    // Deleted under a running vipd: a clear error and an exit, and the peer takes over.
    let master_pid = lab.status(0).unwrap().pid;
    lab.nodes[0].ok("ip link del lan0").unwrap();
    assert!(
        lab.signal(master_pid, 0, 5 * SEC),
        "vipd kept running without its interface"
    );
    assert!(
        lab.log_text(0).contains("was deleted"),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
}

#[test]
fn a_healed_split_brain_ends_with_one_owner_and_the_client_on_its_mac() {
    for tag in ["split1", "split2"] {
        let mut lab = Lab::new(tag, 2).unwrap();
        lab.as_user = true;
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
        // Advertisements stop crossing the bridge: the backup takes over, both are MASTER,
        // and the client follows the last announcement (the backup's).
        lab.block_multicast_to(0, true).unwrap();
        lab.block_multicast_to(1, true).unwrap();
        assert!(
            lab.wait_state(1, 1, "MASTER", 6 * SEC),
            "{}",
            lab.log_text(1)
        );
        assert_eq!(lab.state(0, 1), "MASTER");
        lab.client
            .ok(&format!("ping -c 2 -i 0.2 -W 1 {VIP}"))
            .unwrap();
        std::thread::sleep(SEC);
        assert_eq!(lab.client_neighbour(VIP), Some(lab.nodes[1].mac()));
        // Heal: whichever MASTER advertises first, the other hears it within an interval.
        lab.block_multicast_to(0, false).unwrap();
        lab.block_multicast_to(1, false).unwrap();
        let healed = Instant::now();
        // Within one advertisement interval (1 s) and a margin for the probe itself.
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(lab.state(0, 1), "MASTER", "{tag}: {}", lab.log_text(0));
        assert_eq!(lab.state(1, 1), "BACKUP", "{tag}: {}", lab.log_text(1));
        assert_eq!(
            lab.client_neighbour(VIP),
            Some(lab.nodes[0].mac()),
            "{tag}: the client still sends to the loser {:?} after the heal",
            healed.elapsed()
        );
        assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()], "{tag}");
    }
}
