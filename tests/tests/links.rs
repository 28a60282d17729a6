//! vipd on the links operators use besides plain Ethernet: a VLAN interface, a bond and a
//! VLAN over a bond, started as users type it; after each hand-off the ARP owners are
//! counted from the client and its pings are checked for loss. These tests need a kernel
//! that can make VLAN and bond devices; `cargo xtask test` finds out first and reports a
//! test it cannot run as skipped, with the reason (run directly, such a test fails).
use std::net::Ipv4Addr;
use std::time::Duration;

use vipd_tests::{Lab, ProbeReport};

const SEC: Duration = Duration::from_secs(1);

fn user_flags(iface: &str, src: Ipv4Addr, vip: &str, advskew: u8) -> Vec<String> {
    [
        "-i",
        iface,
        "-s",
        &src.to_string(),
        "-v",
        "1",
        "-p",
        "secret",
        "-a",
        vip,
        "-b",
        "1",
        "-k",
        &advskew.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(lab: &mut Lab, i: usize, flags: &[String]) -> u32 {
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    lab.start_vipd(i, &args).unwrap()
}

/// Node 1 (advskew 0) MASTER and node 2 (advskew 100) BACKUP, started as users type it on
/// `iface`; returns their pids.
fn start_pair(lab: &mut Lab, iface: &str, src: [Ipv4Addr; 2], vip: Ipv4Addr) -> [u32; 2] {
    let vip_flag = format!("{vip}/24");
    let a = start(lab, 0, &user_flags(iface, src[0], &vip_flag, 0));
    let b = start(lab, 1, &user_flags(iface, src[1], &vip_flag, 100));
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
    [a, b]
}

fn probe_while(
    lab: &mut Lab,
    vip: Ipv4Addr,
    count: u32,
    act: impl FnOnce(&mut Lab),
) -> ProbeReport {
    let probe = lab
        .start_probe(vip, Duration::from_millis(10), count)
        .unwrap();
    std::thread::sleep(SEC);
    act(lab);
    lab.finish_probe(probe).unwrap()
}

/// The two hand-offs every link kind must survive while the client pings the VIP every
/// 10 ms over `client_if`, with one ARP owner after each: a graceful demote of node 1
/// (nothing lost), then node loss, node 2 killed with SIGKILL (pings resume within
/// node 1's master-down interval of 3 s plus an advertisement interval).
fn hand_offs(lab: &mut Lab, client_if: &str, iface: &str, vip: Ipv4Addr, pids: [u32; 2]) {
    let macs = [lab.nodes[0].mac_of(iface), lab.nodes[1].mac_of(iface)];
    assert_eq!(lab.arp_owners_on(client_if, vip, 3), vec![macs[0].clone()]);
    let report = probe_while(lab, vip, 300, |lab| {
        lab.vipd_ctl(0, &["demote", "--all"]).unwrap();
        assert!(
            lab.wait_state(1, 1, "MASTER", 2 * SEC),
            "{}",
            lab.log_text(1)
        );
    });
    assert_eq!(report.lost(), 0, "graceful hand-off: {report:?}");
    assert_eq!(lab.arp_owners_on(client_if, vip, 3), vec![macs[1].clone()]);
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    let report = probe_while(lab, vip, 700, |lab| {
        assert!(lab.signal(pids[1], libc::SIGKILL, 2 * SEC));
        assert!(
            lab.wait_state(0, 1, "MASTER", 6 * SEC),
            "{}",
            lab.log_text(0)
        );
    });
    let bound = 5 * SEC;
    assert!(
        report.received > 0 && report.longest_gap < bound,
        "node loss: {report:?}"
    );
    for _ in 0..2 {
        assert_eq!(lab.arp_owners_on(client_if, vip, 3), vec![macs[0].clone()]);
    }
}

/// Adds `eth0.100` (VLAN 100) on `parent` with 10.0.100.K/24 on each node and the client.
fn vlan_100(lab: &Lab, node_parent: &str) {
    let hosts: Vec<_> = lab.nodes.iter().chain([&lab.client]).cloned().collect();
    for (k, h) in hosts.iter().enumerate() {
        let parent = if k < lab.nodes.len() {
            node_parent
        } else {
            "eth0"
        };
        h.ok(&format!(
            "ip link add link {parent} name {parent}.100 type vlan id 100 && \
             ip addr add 10.0.100.{}/24 dev {parent}.100 && ip link set {parent}.100 up",
            k + 1
        ))
        .unwrap();
    }
}

/// Enslaves each node's eth0 and a second link eth1 to an active-backup `bond0`, which
/// gets the node's address when `addr` is set.
fn bond(lab: &Lab, addr: bool) {
    for i in 0..lab.nodes.len() {
        lab.add_link(i, "eth1").unwrap();
        let addr = if addr {
            format!(
                " && ip addr add {}/24 dev bond0",
                vipd_tests::node_addr(i + 1)
            )
        } else {
            String::new()
        };
        lab.nodes[i]
            .ok(&format!(
                "ip addr flush dev eth0 && ip link set eth0 down && \
                 ip link add bond0 type bond mode active-backup miimon 10 && \
                 ip link set eth0 master bond0 && ip link set eth1 master bond0 && \
                 ip link set bond0 up{addr}"
            ))
            .unwrap();
    }
}

/// The master's active slave fails while the client pings: the bond moves to the other
/// link, the master stays MASTER and alone, and the client loses at most a moment.
fn slave_failure(lab: &mut Lab, client_if: &str, iface: &str, vip: Ipv4Addr) {
    let mac0 = lab.nodes[0].mac_of(iface);
    let report = probe_while(lab, vip, 300, |lab| {
        lab.nodes[0].ok("ip link set eth0 down").unwrap();
    });
    assert_eq!(lab.state(0, 1), "MASTER", "{}", lab.log_text(0));
    assert_eq!(lab.state(1, 1), "BACKUP", "{}", lab.log_text(1));
    assert!(
        report.received > 0 && report.longest_gap < SEC,
        "slave failure: {report:?}"
    );
    assert_eq!(lab.arp_owners_on(client_if, vip, 3), vec![mac0]);
}

#[test]
fn a_vip_on_a_vlan_interface_fails_over_with_one_owner() {
    let mut lab = Lab::new("vlan", 2).unwrap();
    lab.as_user = true;
    vlan_100(&lab, "eth0");
    let vip = Ipv4Addr::new(10, 0, 100, 100);
    let src = [Ipv4Addr::new(10, 0, 100, 1), Ipv4Addr::new(10, 0, 100, 2)];
    let pids = start_pair(&mut lab, "eth0.100", src, vip);
    let status = lab.status(0).unwrap();
    assert_eq!(
        status.interfaces[0].mode, "tc",
        "a VLAN interface gets the TC ingress hook by default"
    );
    hand_offs(&mut lab, "eth0.100", "eth0.100", vip, pids);
}

#[test]
fn a_vip_on_a_bond_fails_over_with_one_owner_and_survives_a_slave_failure() {
    let mut lab = Lab::new("bond", 2).unwrap();
    lab.as_user = true;
    bond(&lab, true);
    let vip = vipd_tests::VIP;
    let src = [vipd_tests::node_addr(1), vipd_tests::node_addr(2)];
    let pids = start_pair(&mut lab, "bond0", src, vip);
    slave_failure(&mut lab, "eth0", "bond0", vip);
    hand_offs(&mut lab, "eth0", "bond0", vip, pids);
}

#[test]
fn a_vip_on_a_vlan_over_a_bond_fails_over_with_one_owner() {
    let mut lab = Lab::new("vlanbond", 2).unwrap();
    lab.as_user = true;
    bond(&lab, false);
    vlan_100(&lab, "bond0");
    let vip = Ipv4Addr::new(10, 0, 100, 100);
    let src = [Ipv4Addr::new(10, 0, 100, 1), Ipv4Addr::new(10, 0, 100, 2)];
    let pids = start_pair(&mut lab, "bond0.100", src, vip);
    slave_failure(&mut lab, "eth0.100", "bond0.100", vip);
    hand_offs(&mut lab, "eth0.100", "bond0.100", vip, pids);
}
