//! Reload (`vipd reload` and SIGHUP) of a running `vipd run --config FILE`, started and
//! driven as a user types it: unchanged groups see no transition and lose no ping, changed
//! settings apply in place, removed groups hand over to the peer, added groups start, and
//! an invalid file changes nothing.
use std::net::Ipv4Addr;
use std::time::Duration;

use vipd_tests::{Lab, Status};

const SEC: Duration = Duration::from_secs(1);

fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// One `[[group]]` per (vhid, advskew); group `vhid` owns 10.0.0.(99 + vhid).
fn config(groups: &[(u8, u8)]) -> String {
    groups
        .iter()
        .map(|(vhid, advskew)| {
            format!(
                "[[group]]\ninterface = \"eth0\"\nvhid = {vhid}\nvips = [\"{}/24\"]\n\
                 password = \"reload\"\nadvskew = {advskew}\npreempt = true\n\n",
                vip(99 + vhid)
            )
        })
        .collect()
}

fn group(s: &Status, vhid: u8) -> Option<&vipd_tests::GroupStatus> {
    s.groups.iter().find(|g| g.vhid == vhid)
}

/// Starts node `i` as a user would, with its configuration in the lab directory.
fn start(lab: &mut Lab, i: usize, text: &str) -> std::path::PathBuf {
    let path = lab.dir().join(format!("n{}.toml", i + 1));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    lab.start_vipd_as_user(i, &["run", "--config", &path.to_string_lossy()])
        .unwrap();
    path
}

#[test]
fn a_reload_touches_only_what_changed() {
    let mut lab = Lab::new("reload", 2).unwrap();
    lab.as_user = true;
    let path = start(&mut lab, 0, &config(&[(1, 0), (2, 0), (3, 0)]));
    start(&mut lab, 1, &config(&[(1, 100), (2, 100), (3, 100)]));
    for vhid in 1..=3 {
        assert!(
            lab.wait_state(0, vhid, "MASTER", 8 * SEC),
            "{}",
            lab.log_text(0)
        );
        assert!(lab.wait_state(1, vhid, "BACKUP", 8 * SEC));
    }
    let before = lab.status_as_user(0).unwrap();
    // A client pings the VIP of the group that does not change, every 10 ms.
    let probe = lab
        .start_probe(vip(100), Duration::from_millis(10), 600)
        .unwrap();
    std::thread::sleep(SEC);

    // Group 2 gets a new advskew (still the best), group 3 goes, group 4 comes.
    std::fs::write(&path, config(&[(1, 0), (2, 50), (4, 0)])).unwrap();
    let out = lab.vipd_ctl(0, &["reload"]).unwrap();
    assert_eq!(
        out.trim(),
        "reloaded: 1 unchanged; added: eth0/vhid4; updated: eth0/vhid2; removed: eth0/vhid3"
    );
    // The removed group hands over to the peer; the added one starts and, alone, takes
    // its VIP after master-down.
    assert!(
        lab.wait_state(1, 3, "MASTER", 5 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(
        lab.wait_state(0, 4, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );

    // An invalid file changes nothing and says why.
    std::fs::write(&path, "[[group]]\ninterface = \"eth0\"\nvhid = 300\n").unwrap();
    let err = lab.vipd_ctl(0, &["reload"]).unwrap_err().to_string();
    assert!(err.contains("nothing changed"), "{err}");
    // SIGHUP does what `vipd reload` does: here, with the same invalid file, nothing.
    let pid = before.pid;
    assert!(!lab.signal(pid, libc::SIGHUP, Duration::from_millis(500)));

    let report = lab.finish_probe(probe).unwrap();
    let after = lab.status_as_user(0).unwrap();
    assert_eq!(report.lost(), 0, "{report:?}");
    let (g1_before, g1) = (group(&before, 1).unwrap(), group(&after, 1).unwrap());
    assert_eq!(
        (g1.state.as_str(), g1.transitions),
        ("MASTER", g1_before.transitions)
    );
    let (g2_before, g2) = (group(&before, 2).unwrap(), group(&after, 2).unwrap());
    assert_eq!(
        (g2.state.as_str(), g2.transitions, g2.advskew),
        ("MASTER", g2_before.transitions, 50)
    );
    assert!(group(&after, 3).is_none(), "{:?}", after.groups);
    assert_eq!(
        after.groups.iter().map(|g| g.vhid).collect::<Vec<_>>(),
        [1, 2, 4]
    );
    let log = lab.log_text(0);
    assert!(log.contains("reload refused, nothing changed"), "{log}");
    // One owner for each VIP, seen from the client.
    assert_eq!(lab.arp_owners(vip(100), 2), vec![lab.nodes[0].mac()]);
    assert_eq!(lab.arp_owners(vip(102), 2), vec![lab.nodes[1].mac()]);
    assert_eq!(lab.arp_owners(vip(103), 2), vec![lab.nodes[0].mac()]);
}

#[test]
fn a_replaced_group_hands_over_then_starts_again() {
    let mut lab = Lab::new("reloadmode", 2).unwrap();
    lab.as_user = true;
    let path = start(&mut lab, 0, &config(&[(1, 0)]));
    start(&mut lab, 1, &config(&[(1, 100)]));
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let probe = lab
        .start_probe(vip(100), Duration::from_millis(10), 400)
        .unwrap();
    std::thread::sleep(SEC / 2);
    // Another address mode is another group: the running one hands over to the peer, the
    // new one starts in BACKUP and, preemptive and better, takes the VIP back.
    let text = config(&[(1, 0)]) + "address_mode = \"move\"\n";
    std::fs::write(&path, text).unwrap();
    let out = lab.vipd_ctl(0, &["reload"]).unwrap();
    assert_eq!(out.trim(), "reloaded: 0 unchanged; replaced: eth0/vhid1");
    assert!(
        lab.wait_state(1, 1, "MASTER", 5 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let report = lab.finish_probe(probe).unwrap();
    assert_eq!(report.lost(), 0, "{report:?}");
    assert_eq!(lab.arp_owners(vip(100), 2), vec![lab.nodes[0].mac()]);
    // In move mode the address is on the MASTER only.
    assert!(lab.nodes[0].has_addr(vip(100)));
}

#[test]
fn a_reload_can_add_a_group_on_a_new_link() {
    let mut lab = Lab::new("reloadlink", 1).unwrap();
    lab.as_user = true;
    let path = start(&mut lab, 0, &config(&[(1, 0)]));
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    lab.add_link(0, "eth1").unwrap();
    lab.nodes[0]
        .ok("ip addr add 10.0.1.1/24 dev eth1 && ip link set eth1 up")
        .unwrap();
    let text = config(&[(1, 0)])
        + "[[group]]\ninterface = \"eth1\"\nvhid = 2\nvips = [\"10.0.1.100/24\"]\n\
           password = \"reload\"\n";
    std::fs::write(&path, text).unwrap();
    // After start-up vipd holds only a few capabilities: attaching to a new link still works.
    let out = lab.vipd_ctl(0, &["reload"]).unwrap();
    assert_eq!(out.trim(), "reloaded: 1 unchanged; added: eth1/vhid2");
    assert!(
        lab.wait_state(0, 2, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let s = lab.status_as_user(0).unwrap();
    let modes: Vec<(&str, &str)> = s
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.mode.as_str()))
        .collect();
    assert!(modes.contains(&("eth1", "tc")), "{modes:?}");
    assert_eq!(
        lab.arp_owners(Ipv4Addr::new(10, 0, 1, 100), 2),
        vec![lab.nodes[0].mac_of("eth1")]
    );
    // A group on a link that does not exist is refused, and nothing changes.
    let text = config(&[(1, 0)])
        + "[[group]]\ninterface = \"eth9\"\nvhid = 3\nvips = [\"10.0.2.100/24\"]\n\
           password = \"reload\"\n";
    std::fs::write(&path, text).unwrap();
    let err = lab.vipd_ctl(0, &["reload"]).unwrap_err().to_string();
    assert!(
        err.contains("eth9") && err.contains("nothing changed"),
        "{err}"
    );
    assert_eq!(lab.status_as_user(0).unwrap().groups.len(), 2);
}

#[test]
fn a_vip_that_moves_to_another_vhid_keeps_its_address_and_one_owner() {
    let mut lab = Lab::new("reloadvhid", 1).unwrap();
    lab.as_user = true;
    let path = start(&mut lab, 0, &config(&[(1, 0)]));
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    // The same VIP under vhid 7: the new group waits for vhid 1 to hand over and go, and
    // the address vipd added stays (the new group needs it).
    let text = config(&[(1, 0)]).replace("vhid = 1", "vhid = 7");
    std::fs::write(&path, text).unwrap();
    let out = lab.vipd_ctl(0, &["reload"]).unwrap();
    assert_eq!(
        out.trim(),
        "reloaded: 0 unchanged; added: eth0/vhid7; removed: eth0/vhid1"
    );
    assert!(
        lab.wait_state(0, 7, "MASTER", 12 * SEC),
        "{}",
        lab.log_text(0)
    );
    let s = lab.status_as_user(0).unwrap();
    assert_eq!(s.groups.iter().map(|g| g.vhid).collect::<Vec<_>>(), [7]);
    assert!(lab.nodes[0].has_addr(vip(100)), "{}", lab.log_text(0));
    assert_eq!(lab.arp_owners(vip(100), 2), vec![lab.nodes[0].mac()]);
}

#[test]
fn a_hand_added_vip_of_a_removed_group_stays_unanswered_across_reloads() {
    let mut lab = Lab::new("reloadguard", 1).unwrap();
    lab.as_user = true;
    // 10.0.0.100 is configured by hand (as ifupdown leaves it): vipd did not add it.
    lab.nodes[0]
        .ok(&format!("ip addr add {}/24 dev eth0", vip(100)))
        .unwrap();
    let path = start(&mut lab, 0, &config(&[(1, 0), (2, 0), (3, 0)]));
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    // Group 1 goes: its address stays, and so does its "not owned" entry. Then group 2
    // goes too: the first guard holds.
    for groups in [&[(2, 0), (3, 0)][..], &[(3, 0)][..]] {
        std::fs::write(&path, config(groups)).unwrap();
        lab.vipd_ctl(0, &["reload"]).unwrap();
        assert!(Lab::wait_for(8 * SEC, || {
            lab.status_as_user(0).unwrap().groups.len() == groups.len()
        }));
    }
    assert!(lab.nodes[0].has_addr(vip(100)));
    assert!(
        lab.arp_owners(vip(100), 3).is_empty(),
        "{}",
        lab.log_text(0)
    );
    // The address vipd added for group 2 is gone with it.
    assert!(!lab.nodes[0].has_addr(vip(101)));
}
