//! The XDP program on hand-built frames (BPF_PROG_TEST_RUN) and on a lab veth under real
//! ping and arping traffic.
use std::net::Ipv4Addr;
use std::time::Duration;

use vipd::kernel::clock::monotonic_ns;
use vipd::kernel::dataplane::{Dataplane, Reception, XdpPreference};
use vipd_common::{AdvertEvent, Reason, VipOwner};
use vipd_tests::{Lab, VIP, frames, in_netns};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Loads the programs inside the lab's first node (pins under the lab's bpffs folder) and
/// runs `f` there.
fn with_dataplane<T: Send + 'static>(
    lab: &Lab,
    f: impl FnOnce(&mut Dataplane, u32) -> T + Send + 'static,
) -> T {
    let pin = lab.pin_dir(0);
    in_netns(&lab.nodes[0].ns, move || {
        let mut dp = Dataplane::load(&pin, &[]).expect("load eBPF");
        let ifindex = vipd::kernel::dataplane::ifindex("eth0").unwrap();
        f(&mut dp, ifindex)
    })
}

/// What the maps hold before a row's frame runs.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// Nothing of vipd's: the VIP is not managed, no group is registered.
    Nothing,
    /// The VIP managed and not owned; group 1 registered (to 224.0.0.18).
    NotOwned,
    /// The VIP owned with a live lease; group 1 registered.
    Owned,
    /// The VIP not owned; group 1 registered as a unicast group of this node ([`ME`]) whose
    /// one peer is the ucarp capture's source; with `any_ttl`, `peer_ttl_check = false`.
    Unicast { any_ttl: bool },
}

/// This node's own address in the unicast rows.
const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn multicast() -> Reception {
    Reception {
        destination: Ipv4Addr::new(224, 0, 0, 18),
        peers: Vec::new(),
        ttl_check: true,
    }
}

/// One row of the verdict table: a frame, the state it meets, what the ingress program
/// must do with it and the one counter it must move.
struct Row {
    name: &'static str,
    setup: Setup,
    frame: Vec<u8>,
    verdict: u32,
    reason: Reason,
}

/// Every packet shape the ingress programs tell apart, each with its verdict and its reason
/// (the drain cases, which need sockets, are in drain.rs; egress needs a real send and is
/// covered by the failover tests).
fn verdict_table() -> Vec<Row> {
    let ip = frames::hex(frames::UCARP_ADVERT);
    let advert = frames::ipv4(&ip);
    let edit = |at: usize, f: fn(&mut u8)| {
        let mut p = ip.clone();
        f(&mut p[at]);
        frames::ipv4(&p)
    };
    let req = frames::arp(1, Ipv4Addr::new(10, 0, 0, 200), VIP);
    let reply = frames::arp(2, VIP, Ipv4Addr::new(10, 0, 0, 200));
    let mut vrrp = ip[..20].to_vec();
    vrrp[3] = 40;
    vrrp.extend_from_slice(&[
        0x21, 1, 100, 1, 1, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // The capture sent to this node instead of the group, and from a source that is not the
    // unicast group's peer.
    let edit_ip = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = ip.clone();
        p[16..20].copy_from_slice(&ME.octets());
        f(&mut p);
        frames::ipv4(&p)
    };
    let unicast = edit_ip(&|_| {});
    let unicast_ttl_64 = edit_ip(&|p| p[8] = 64);
    let unicast_stranger = edit_ip(&|p| p[15] ^= 0x40);
    let mut v6 = frames::tcp_syn(VIP);
    v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    use Setup::*;
    let row = |name, setup, frame, verdict, reason| Row {
        name,
        setup,
        frame,
        verdict,
        reason,
    };
    vec![
        row(
            "ARP request, unmanaged address",
            Nothing,
            req.clone(),
            XDP_PASS,
            Reason::PassArpRequest,
        ),
        row(
            "ARP request, VIP not owned",
            NotOwned,
            req.clone(),
            XDP_DROP,
            Reason::DropArpNotOwned,
        ),
        row(
            "ARP request, VIP owned",
            Owned,
            req.clone(),
            XDP_PASS,
            Reason::PassArpOwnedVip,
        ),
        row(
            "ARP reply for a VIP not owned",
            NotOwned,
            reply,
            XDP_PASS,
            Reason::PassArpOther,
        ),
        row(
            "802.1Q ARP request, VIP not owned",
            NotOwned,
            frames::tagged(&req, &[(0x8100, 100)]),
            XDP_DROP,
            Reason::DropArpNotOwned,
        ),
        row(
            "priority-tagged ARP request, VIP not owned",
            NotOwned,
            frames::tagged(&req, &[(0x8100, 0)]),
            XDP_DROP,
            Reason::DropArpNotOwned,
        ),
        row(
            "QinQ ARP request, VIP owned",
            Owned,
            frames::tagged(&req, &[(0x88a8, 7), (0x8100, 100)]),
            XDP_PASS,
            Reason::PassArpOwnedVip,
        ),
        row(
            "advertisement of a configured group",
            NotOwned,
            advert.clone(),
            XDP_PASS,
            Reason::PassCarpToDaemon,
        ),
        row(
            "802.1Q advertisement of a configured group",
            NotOwned,
            frames::tagged(&advert, &[(0x8100, 100)]),
            XDP_PASS,
            Reason::PassCarpToDaemon,
        ),
        row(
            "advertisement of a group not configured here",
            Nothing,
            advert.clone(),
            XDP_PASS,
            Reason::PassCarpOtherVhid,
        ),
        row(
            "advertisement with TTL 64",
            NotOwned,
            edit(8, |b| *b = 64),
            XDP_DROP,
            Reason::DropCarpBadTtl,
        ),
        row(
            "fragment of protocol 112",
            NotOwned,
            edit(6, |b| *b |= 0x20),
            XDP_DROP,
            Reason::DropCarpFragment,
        ),
        row(
            "advertisement to another destination",
            NotOwned,
            edit(19, |b| *b = 19),
            XDP_DROP,
            Reason::DropCarpBadDestination,
        ),
        row(
            "protocol 112 of VRRP's size",
            NotOwned,
            frames::ipv4(&vrrp),
            XDP_PASS,
            Reason::PassProto112NotCarp,
        ),
        row(
            "TCP SYN to the VIP",
            Owned,
            frames::tcp_syn(VIP),
            XDP_PASS,
            Reason::PassIpv4Other,
        ),
        row(
            "unicast advertisement from the group's peer",
            Unicast { any_ttl: false },
            unicast.clone(),
            XDP_PASS,
            Reason::PassCarpToDaemon,
        ),
        row(
            "unicast advertisement from a source not a peer",
            Unicast { any_ttl: false },
            unicast_stranger,
            XDP_DROP,
            Reason::DropCarpNotPeer,
        ),
        row(
            "multicast advertisement of a unicast group",
            Unicast { any_ttl: false },
            advert.clone(),
            XDP_DROP,
            Reason::DropCarpBadDestination,
        ),
        row(
            "unicast advertisement with TTL 64",
            Unicast { any_ttl: false },
            unicast_ttl_64.clone(),
            XDP_DROP,
            Reason::DropCarpBadTtl,
        ),
        row(
            "unicast TTL 64, peer_ttl_check = false",
            Unicast { any_ttl: true },
            unicast_ttl_64,
            XDP_PASS,
            Reason::PassCarpToDaemon,
        ),
        row("IPv6", NotOwned, v6, XDP_PASS, Reason::PassOther),
        row(
            "runt frame",
            NotOwned,
            req[..20].to_vec(),
            XDP_PASS,
            Reason::PassTruncated,
        ),
    ]
}

#[test]
fn each_packet_shape_gets_its_verdict_and_moves_its_one_counter() {
    let lab = Lab::new("table", 1).unwrap();
    with_dataplane(&lab, |dp, ifindex| {
        let _ring = dp.take_adverts().unwrap();
        for row in verdict_table() {
            let now = monotonic_ns();
            let _ = dp.retain(|_, _| false, |_, _| false);
            match row.setup {
                Setup::Nothing => {}
                Setup::NotOwned | Setup::Owned => {
                    let owner = match row.setup {
                        Setup::Owned => VipOwner {
                            renewed_ns: now,
                            firm_until_ns: now + 10_000_000_000,
                            grace_until_ns: now + 10_000_000_000,
                            vhid: 1,
                            _pad: 0,
                        },
                        _ => VipOwner::NOT_OWNED,
                    };
                    dp.set_owner(ifindex, VIP, owner).unwrap();
                    dp.add_group(ifindex, 1, &multicast()).unwrap();
                }
                Setup::Unicast { any_ttl } => {
                    let ip = frames::hex(frames::UCARP_ADVERT);
                    let peer = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
                    dp.set_owner(ifindex, VIP, VipOwner::NOT_OWNED).unwrap();
                    let rx = Reception {
                        destination: ME,
                        peers: vec![peer],
                        ttl_check: !any_ttl,
                    };
                    dp.add_group(ifindex, 1, &rx).unwrap();
                }
            }
            let before = dp.counters().unwrap();
            let (verdict, _) = dp.test_run_xdp(&row.frame, ifindex, 1).unwrap();
            let after = dp.counters().unwrap();
            assert_eq!(verdict, row.verdict, "{}: verdict", row.name);
            for r in Reason::ALL {
                let moved = after.get(r) - before.get(r);
                let want = u64::from(r == row.reason);
                assert_eq!(moved, want, "{}: counter {r:?}", row.name);
            }
            eprintln!("    {:<46} verdict {verdict} {:?}", row.name, row.reason);
        }
    });
}

#[test]
fn classifies_hand_built_frames() {
    let lab = Lab::new("testrun", 1).unwrap();
    with_dataplane(&lab, |dp, ifindex| {
        let run = |dp: &Dataplane, frame: &[u8]| dp.test_run_xdp(frame, ifindex, 1).unwrap().0;

        // ARP request for an address vipd does not manage: passed.
        let before = dp.counters().unwrap();
        let req = frames::arp(1, Ipv4Addr::new(10, 0, 0, 200), VIP);
        assert_eq!(run(dp, &req), XDP_PASS);
        let after = dp.counters().unwrap();
        assert_eq!(
            after.get(Reason::PassArpRequest),
            before.get(Reason::PassArpRequest) + 1
        );

        // The same request once vipd manages the VIP but does not own it: dropped.
        dp.set_owner(ifindex, VIP, VipOwner::NOT_OWNED).unwrap();
        assert_eq!(run(dp, &req), XDP_DROP);
        assert_eq!(dp.counters().unwrap().get(Reason::DropArpNotOwned), 1);
        // Owned with a live lease: passed. Expired lease: dropped again.
        let lease = |renewed_ns, firm_until_ns, grace_until_ns| VipOwner {
            renewed_ns,
            firm_until_ns,
            grace_until_ns,
            vhid: 1,
            _pad: 0,
        };
        let now = monotonic_ns();
        let s10 = 10_000_000_000;
        dp.set_owner(ifindex, VIP, lease(now, now + s10, now + s10))
            .unwrap();
        assert_eq!(run(dp, &req), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassArpOwnedVip), 1);
        dp.set_owner(ifindex, VIP, lease(now - 2, now - 1, now - 1))
            .unwrap();
        assert_eq!(run(dp, &req), XDP_DROP);
        assert_eq!(dp.counters().unwrap().get(Reason::DropArpNotOwned), 2);
        // Firm part over, grace running, no peer has advertised the group: passed.
        dp.set_owner(ifindex, VIP, lease(now - 2, now - 1, now + s10))
            .unwrap();
        assert_eq!(run(dp, &req), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassArpOwnedVip), 2);
        // ARP replies are never touched.
        assert_eq!(
            run(dp, &frames::arp(2, VIP, Ipv4Addr::new(10, 0, 0, 200))),
            XDP_PASS
        );
        assert_eq!(dp.counters().unwrap().get(Reason::PassArpOther), 1);

        // The real ucarp advertisement: another group's until vhid 1 is configured here.
        let ip = frames::hex(frames::UCARP_ADVERT);
        let advert = frames::ipv4(&ip);
        assert_eq!(run(dp, &advert), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassCarpOtherVhid), 1);
        dp.add_group(ifindex, 1, &multicast()).unwrap();
        let mut ring = dp.take_adverts().unwrap();
        assert_eq!(run(dp, &advert), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassCarpToDaemon), 1);
        let item = ring.next().expect("advertisement in the ring buffer");
        assert_eq!(item.len(), std::mem::size_of::<AdvertEvent>());
        // SAFETY: the record is an AdvertEvent written by the XDP program.
        let ev: AdvertEvent = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
        drop(item);
        assert_eq!(&ev.packet[..], &ip[..]);
        assert_eq!(ev.ifindex, ifindex);
        assert!(ev.rx_ns > 0 && ev.rx_ns <= monotonic_ns());
        let seen = dp.group_seen(ifindex, 1).unwrap();
        assert_eq!((seen.count, seen.last_seen_ns), (1, ev.rx_ns));
        // A known peer's advertisement takes the peers' ring, even when a flood from other
        // sources has filled the ordinary one.
        let mut peer_ring = dp.take_peer_adverts().unwrap();
        let (_, _) = dp.test_run_xdp(&advert, ifindex, 5000).unwrap();
        assert!(dp.counters().unwrap().get(Reason::DropCarpRingFull) > 0);
        dp.add_known_peer(ifindex, Ipv4Addr::new(10, 77, 0, 1))
            .unwrap();
        assert_eq!(run(dp, &advert), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassCarpKnownPeer), 1);
        assert!(peer_ring.next().is_some());
        while ring.next().is_some() {}
        // A peer advertised the group after the lease was renewed: the grace is over.
        assert_eq!(run(dp, &req), XDP_DROP);
        assert_eq!(dp.counters().unwrap().get(Reason::DropArpNotOwned), 3);

        // A fragment of protocol 112, or an advertisement to another destination:
        // dropped before it takes ring space.
        let mut fragment = ip.clone();
        fragment[6] |= 0x20;
        assert_eq!(run(dp, &frames::ipv4(&fragment)), XDP_DROP);
        assert_eq!(dp.counters().unwrap().get(Reason::DropCarpFragment), 1);
        let mut elsewhere = ip.clone();
        elsewhere[19] = 19;
        assert_eq!(run(dp, &frames::ipv4(&elsewhere)), XDP_DROP);
        assert_eq!(
            dp.counters().unwrap().get(Reason::DropCarpBadDestination),
            1
        );
        assert!(ring.next().is_none());

        // Same advertisement with TTL 64: dropped in XDP, never reaches the daemon.
        let mut low_ttl = ip.clone();
        low_ttl[8] = 64;
        assert_eq!(run(dp, &frames::ipv4(&low_ttl)), XDP_DROP);
        assert_eq!(dp.counters().unwrap().get(Reason::DropCarpBadTtl), 1);
        assert!(ring.next().is_none());
        // A VRRP-sized protocol-112 packet is not CARP: passed untouched.
        let mut vrrp = ip[..20].to_vec();
        vrrp[3] = 40;
        vrrp.extend_from_slice(&[
            0x21, 1, 100, 1, 1, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(run(dp, &frames::ipv4(&vrrp)), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassProto112NotCarp), 1);

        // TCP SYN: other IPv4.
        assert_eq!(run(dp, &frames::tcp_syn(VIP)), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassIpv4Other), 1);
        // IPv6 and a runt frame.
        let mut v6 = frames::tcp_syn(VIP);
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(run(dp, &v6), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassOther), 1);
        assert_eq!(run(dp, &req[..20]), XDP_PASS);
        assert_eq!(dp.counters().unwrap().get(Reason::PassTruncated), 1);

        // Tagged frames get the same verdicts: 802.1Q, a priority tag (VID 0), 802.1ad
        // over 802.1Q.
        dp.set_owner(ifindex, VIP, VipOwner::NOT_OWNED).unwrap();
        let dropped = dp.counters().unwrap().get(Reason::DropArpNotOwned);
        let to_daemon = |c: &vipd::kernel::dataplane::ReasonCounts| {
            c.get(Reason::PassCarpToDaemon) + c.get(Reason::PassCarpKnownPeer)
        };
        let adverts = to_daemon(&dp.counters().unwrap());
        let tags: [&[(u16, u16)]; 3] = [
            &[(0x8100, 100)],
            &[(0x8100, 0)],
            &[(0x88a8, 7), (0x8100, 100)],
        ];
        for (k, tag) in tags.iter().enumerate() {
            assert_eq!(run(dp, &frames::tagged(&req, tag)), XDP_DROP, "{tag:?}");
            let c = dp.counters().unwrap();
            assert_eq!(c.get(Reason::DropArpNotOwned), dropped + k as u64 + 1);
            assert_eq!(run(dp, &frames::tagged(&advert, tag)), XDP_PASS);
            assert_eq!(to_daemon(&dp.counters().unwrap()), adverts + k as u64 + 1);
        }
    });
}

#[test]
fn counters_move_under_real_traffic() {
    let lab = Lab::new("traffic", 1).unwrap();
    let node = lab.nodes[0].clone();
    let pin = lab.pin_dir(0);
    // Attach inside the node, then generate traffic from the client.
    let before = in_netns(&node.ns, move || {
        let mut dp = Dataplane::load(&pin, &[]).expect("load eBPF");
        let attached = dp.attach("eth0", XdpPreference::Native).expect("attach");
        assert_eq!(
            attached.mode,
            vipd::kernel::dataplane::AttachMode::Native,
            "veth supports native XDP"
        );
        assert!(!attached.adopted);
        dp.counters().unwrap()
    });
    lab.client
        .ok(&format!("ping -c 5 -i 0.05 -W 1 {}", node.addr))
        .expect("node answers ping with XDP attached");
    lab.client
        .ok(&format!("arping -c 3 -w 3 -I eth0 {}", node.addr))
        .expect("node answers arping with XDP attached");
    let pin = lab.pin_dir(0);
    let after = in_netns(&node.ns, move || {
        // A second load finds the program on the interface and adopts its maps.
        let eth0 = vipd::kernel::dataplane::ifindex("eth0").unwrap();
        let mut dp = Dataplane::load(&pin, &[eth0]).expect("reload adopting the maps");
        let c = dp.counters().unwrap();
        let attached = dp.attach("eth0", XdpPreference::Native).expect("attach");
        assert!(attached.adopted);
        assert_eq!(attached.mode, vipd::kernel::dataplane::AttachMode::Native);
        dp.detach_all(&[]).unwrap();
        c
    });
    let moved = |r: Reason| after.get(r) - before.get(r);
    assert!(
        moved(Reason::PassIpv4Other) >= 5,
        "echo requests counted: {after:?}"
    );
    assert!(
        moved(Reason::PassArpRequest) >= 3,
        "ARP requests counted: {after:?}"
    );
    assert_eq!(moved(Reason::DropArpNotOwned), 0);
    // Once detached, the node still answers (nothing of vipd left in the path).
    std::thread::sleep(Duration::from_millis(10));
    lab.client
        .ok(&format!("ping -c 1 -W 1 {}", node.addr))
        .expect("node answers after detach");
}
