//! vipd on the links operators use besides plain Ethernet: a VLAN interface and a bond,
//! started as users type it, ARP owners counted from the client. These tests need a kernel
//! that can make VLAN and bond devices; `cargo xtask test` finds out first and reports a
//! test it cannot run as skipped, with the reason (run directly, such a test fails).
use std::net::Ipv4Addr;
use std::time::Duration;

use vipd_tests::Lab;

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

#[test]
fn a_vip_on_a_vlan_interface_fails_over_with_one_owner() {
    let mut lab = Lab::new("vlan", 2).unwrap();
    lab.as_user = true;
    let vip = Ipv4Addr::new(10, 0, 100, 100);
    let hosts: Vec<_> = lab.nodes.iter().chain([&lab.client]).cloned().collect();
    for (k, h) in hosts.iter().enumerate() {
        h.ok(&format!(
            "ip link add link eth0 name eth0.100 type vlan id 100 && \
             ip addr add 10.0.100.{}/24 dev eth0.100 && ip link set eth0.100 up",
            k + 1
        ))
        .unwrap();
    }
    let vip_flag = format!("{vip}/24");
    let f0 = user_flags("eth0.100", Ipv4Addr::new(10, 0, 100, 1), &vip_flag, 0);
    let f1 = user_flags("eth0.100", Ipv4Addr::new(10, 0, 100, 2), &vip_flag, 100);
    let master = start(&mut lab, 0, &f0);
    start(&mut lab, 1, &f1);
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
    let status = lab.status(0).unwrap();
    assert_eq!(
        status.interfaces[0].mode, "tc",
        "a VLAN interface gets the TC ingress hook by default"
    );
    let mac0 = lab.nodes[0].mac_of("eth0.100");
    let mac1 = lab.nodes[1].mac_of("eth0.100");
    assert_eq!(lab.arp_owners_on("eth0.100", vip, 3), vec![mac0]);
    assert!(lab.signal(master, libc::SIGKILL, 2 * SEC));
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    for _ in 0..2 {
        assert_eq!(lab.arp_owners_on("eth0.100", vip, 3), vec![mac1.clone()]);
    }
}

#[test]
fn a_vip_on_a_bond_fails_over_with_one_owner_and_survives_a_slave_failure() {
    let mut lab = Lab::new("bond", 2).unwrap();
    lab.as_user = true;
    for i in 0..2 {
        lab.add_link(i, "eth1").unwrap();
        let addr = vipd_tests::node_addr(i + 1);
        lab.nodes[i]
            .ok(&format!(
                "ip addr flush dev eth0 && ip link set eth0 down && \
                 ip link add bond0 type bond mode active-backup miimon 10 && \
                 ip link set eth0 master bond0 && ip link set eth1 master bond0 && \
                 ip link set bond0 up && ip addr add {addr}/24 dev bond0"
            ))
            .unwrap();
    }
    let vip = vipd_tests::VIP;
    let vip_flag = format!("{vip}/24");
    let f0 = user_flags("bond0", vipd_tests::node_addr(1), &vip_flag, 0);
    let f1 = user_flags("bond0", vipd_tests::node_addr(2), &vip_flag, 100);
    let master = start(&mut lab, 0, &f0);
    start(&mut lab, 1, &f1);
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
    let mac0 = lab.nodes[0].mac_of("bond0");
    let mac1 = lab.nodes[1].mac_of("bond0");
    assert_eq!(lab.arp_owners(vip, 3), vec![mac0.clone()]);
    // The active slave fails: the bond moves to the other link and the master stays.
    lab.nodes[0].ok("ip link set eth0 down").unwrap();
    std::thread::sleep(2 * SEC);
    assert_eq!(lab.state(0, 1), "MASTER", "{}", lab.log_text(0));
    assert_eq!(lab.state(1, 1), "BACKUP", "{}", lab.log_text(1));
    assert_eq!(lab.arp_owners(vip, 3), vec![mac0]);
    // The master dies: the peer takes over, alone.
    assert!(lab.signal(master, libc::SIGKILL, 2 * SEC));
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    for _ in 0..2 {
        assert_eq!(lab.arp_owners(vip, 3), vec![mac1.clone()]);
    }
}
