//! Unicast peers on a network that carries no multicast at all: the lab's bridge drops
//! every multicast frame (a rule of nftables' bridge family), broadcast and unicast pass.
//! vipd runs as users type it (`ip netns exec NS vipd -i eth0 ... --peer ADDR`), and what
//! counts is seen from the client: who answers ARP for the VIP and whether its pings get
//! through.
use std::time::Duration;

use vipd::protocol::carp::{Advert, Key, build_ipv4};
use vipd_tests::{Lab, VIP, in_netns, node_addr, packets};

const SEC: Duration = Duration::from_secs(1);

/// Node `i` (0-based) with advskew `advskew`, advertising to the other nodes of a pair when
/// `unicast`, to 224.0.0.18 otherwise.
fn start(lab: &mut Lab, i: usize, advskew: u8, unicast: bool) -> u32 {
    let peer = node_addr(2 - i).to_string();
    let extra: Vec<&str> = if unicast {
        vec!["--peer", &peer]
    } else {
        vec![]
    };
    lab.start_node(i, advskew, &extra).unwrap()
}

fn xdp_count(lab: &Lab, i: usize, reason: &str) -> u64 {
    let s = lab.status(i).unwrap();
    s.xdp
        .iter()
        .find(|(r, _)| r == reason)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no counter {reason} in {:?}", s.xdp))
}

/// ICMP destination-unreachable messages host `h` sent (its namespace's SNMP counters).
fn icmp_unreachables_sent(h: &vipd_tests::Host) -> u64 {
    let snmp = h.ok("cat /proc/net/snmp").unwrap();
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "OutDestUnreachs")
        .unwrap();
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

fn mac_bytes(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(text.split(':')) {
        *b = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

#[test]
fn without_multicast_a_unicast_pair_elects_one_master_and_hands_over_losing_nothing() {
    let mut lab = Lab::new("unicast", 2).unwrap();
    lab.as_user = true;
    lab.drop_multicast().unwrap();

    // Multicast groups on this network: neither node hears the other, both take the VIP.
    let pids = [start(&mut lab, 0, 0, false), start(&mut lab, 1, 100, false)];
    for i in 0..2 {
        assert!(
            lab.wait_state(i, 1, "MASTER", 8 * SEC),
            "node {} without peers:\n{}",
            i + 1,
            lab.log_text(i)
        );
    }
    assert!(
        lab.multicast_dropped().unwrap() > 0,
        "the bridge dropped no multicast"
    );
    for pid in pids {
        assert!(
            lab.signal(pid, libc::SIGTERM, 10 * SEC),
            "vipd did not stop"
        );
    }

    // The same nodes with --peer: one MASTER, one BACKUP, one ARP owner.
    let _ = start(&mut lab, 0, 0, true);
    let backup = start(&mut lab, 1, 100, true);
    lab.expect_roles(&["MASTER", "BACKUP"]);
    let macs = [lab.nodes[0].mac(), lab.nodes[1].mac()];
    assert_eq!(lab.arp_owners(VIP, 3), vec![macs[0].clone()]);
    let s = lab.status(1).unwrap();
    assert_eq!(s.groups[0].peers, vec![node_addr(1).to_string()]);
    assert!(s.groups[0].adverts_received > 0);
    // Unicast advertisements are delivered to the node's IP stack too, which must not
    // answer them with "protocol unreachable".
    for node in &lab.nodes {
        assert_eq!(icmp_unreachables_sent(node), 0, "{}", node.ns);
    }

    // Graceful hand-off while the client pings every 10 ms: nothing lost.
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 300)
        .unwrap();
    std::thread::sleep(SEC);
    lab.vipd_ctl(0, &["demote", "--all"]).unwrap();
    assert!(
        lab.wait_state(1, 1, "MASTER", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    let report = lab.finish_probe(probe).unwrap();
    assert_eq!(report.lost(), 0, "graceful hand-off: {report:?}");
    assert_eq!(lab.arp_owners(VIP, 3), vec![macs[1].clone()]);

    // A host that is not a peer (the client) sends node 2 a signed advertisement better
    // than node 2's own, to node 2's address: dropped in the kernel and counted there,
    // node 2 stays MASTER.
    let key = Key::new(b"secret");
    let node2 = node_addr(2);
    let dst_mac = mac_bytes(&macs[1]);
    let before = xdp_count(&lab, 1, "drop_carp_not_peer");
    in_netns(&lab.client.ns.clone(), move || {
        let sender = packets::Sender::open("eth0").unwrap();
        for counter in 0..20u64 {
            let adv = Advert::signed(1, 1, 0, 0, 1 << 40 | counter, &[VIP], &key);
            let packet = build_ipv4(vipd_tests::CLIENT, node2, counter as u16, &adv);
            sender.send_ipv4(dst_mac, &packet).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    std::thread::sleep(SEC);
    assert_eq!(xdp_count(&lab, 1, "drop_carp_not_peer") - before, 20);
    assert_eq!(lab.state(1, 1), "MASTER", "{}", lab.log_text(1));
    assert_eq!(lab.arp_owners(VIP, 3), vec![macs[1].clone()]);

    // Node loss: node 2 killed with SIGKILL. Node 1, promoted again, takes over within its
    // master-down interval; one ARP owner, and the client's pings resume.
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 700)
        .unwrap();
    std::thread::sleep(SEC);
    assert!(lab.signal(backup, libc::SIGKILL, 2 * SEC));
    assert!(
        lab.wait_state(0, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(0)
    );
    let report = lab.finish_probe(probe).unwrap();
    assert!(
        report.received > 0 && report.longest_gap < 5 * SEC,
        "node loss: {report:?}"
    );
    for _ in 0..2 {
        assert_eq!(lab.arp_owners(VIP, 3), vec![macs[0].clone()]);
    }
}

#[test]
fn a_peer_behind_a_router_needs_peer_ttl_check_off() {
    // Node 2's advertisements leave it with TTL 254, as if one router were in between (an
    // nftables rule on node 2's output; on node 1 XDP would see them before any rule).
    let mut lab = Lab::new("unicastttl", 2).unwrap();
    lab.as_user = true;
    lab.drop_multicast().unwrap();
    lab.nodes[1]
        .ok("nft add table ip vipdtest && \
             nft add chain ip vipdtest lowerttl '{ type filter hook output priority 0; }' && \
             nft add rule ip vipdtest lowerttl ip protocol 112 ip ttl set 254")
        .unwrap();
    let (peer1, peer2) = (node_addr(1).to_string(), node_addr(2).to_string());
    lab.start_node(1, 0, &["--peer", &peer1]).unwrap();
    assert!(
        lab.wait_state(1, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(1)
    );
    // Node 1 checks the TTL: node 2's advertisements are dropped in the kernel and counted,
    // so node 1 hears no master and takes the VIP as well.
    let first = lab.start_node(0, 100, &["--peer", &peer2]).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(xdp_count(&lab, 0, "drop_carp_bad_ttl") > 0);
    // With --no-peer-ttl-check node 1 accepts them and stays BACKUP: one owner.
    assert!(lab.signal(first, libc::SIGTERM, 10 * SEC));
    lab.start_node(0, 100, &["--peer", &peer2, "--no-peer-ttl-check"])
        .unwrap();
    assert!(
        lab.wait_state(0, 1, "BACKUP", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(5 * SEC);
    assert_eq!(lab.state(0, 1), "BACKUP", "{}", lab.log_text(0));
    assert_eq!(lab.state(1, 1), "MASTER", "{}", lab.log_text(1));
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
}
