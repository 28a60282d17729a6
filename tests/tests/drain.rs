//! Connections survive a graceful hand-off: a TCP echo service runs on every node (bound
//! to 0.0.0.0, answering with the node's name), clients hold connections to the VIP and
//! exchange a line every 10 ms. After `vipd demote` the new master forwards the segments
//! of connections it has no socket for to the previous master, whose stack serves them;
//! new connections land on the new master. Every scenario starts vipd as users type it
//! (`ip netns exec NS vipd -i eth0 ...`), in each ingress mode vipd offers on veth.
use std::time::{Duration, Instant};

use vipd_tests::tcp::{Chatter, ConnReport, EchoServer, who_answers};
use vipd_tests::{Lab, VIP};

const SEC: Duration = Duration::from_secs(1);
const EVERY: Duration = Duration::from_millis(10);

/// The ingress modes on the lab's veth links: `auto` (TC there), XDP generic and native.
/// Native XDP on veth needs two things a wire gives for free: XDP_TX hands the frame to
/// the peer's NAPI, which exists only with GRO on (or an XDP program) on the peer, so the
/// lab turns GRO on on the bridge ports; and a native program sees bytes, not the skb, so
/// a segment a local stack sent with a partial checksum (veth's checksum offload) would
/// be forwarded with it and dropped by the previous master: the lab's client computes
/// its checksums (`ethtool -K eth0 tx off`), as every frame from a real wire has them.
const MODES: [&str; 3] = ["auto", "generic", "native"];

/// A lab of `n` nodes with the echo service on each and vipd started as users type it
/// (node 1 advskew 0, then 50, 100), node 1 MASTER.
fn lab(tag: &str, n: usize, mode: &str) -> (Lab, Vec<EchoServer>) {
    let mut lab = Lab::new(tag, n).expect("lab");
    lab.as_user = true;
    if mode == "native" {
        for i in 1..=n {
            lab.switch_ok(&format!("ethtool -K p{i} gro on"))
                .expect("GRO on the bridge port");
        }
        lab.client
            .ok("ethtool -K eth0 tx off")
            .expect("full checksums from the client");
    }
    let servers = (0..n)
        .map(|i| EchoServer::start(&lab.nodes[i], &format!("n{}", i + 1)).expect("echo"))
        .collect();
    for i in 0..n {
        let skew = [0, 50, 100][i];
        lab.start_node(i, skew, &["--xdp-mode", mode])
            .expect("vipd");
    }
    let roles: Vec<&str> = (0..n)
        .map(|i| if i == 0 { "MASTER" } else { "BACKUP" })
        .collect();
    lab.expect_roles(&roles);
    (lab, servers)
}

fn status(lab: &Lab, i: usize) -> serde_json::Value {
    let text = lab.vipd_ctl(i, &["status", "--json"]).expect("status");
    serde_json::from_str(&text).expect("status JSON")
}

/// Node `i`'s forwarding counter `name` (`forwarded`, `from_peer`, ...).
fn counter(lab: &Lab, i: usize, name: &str) -> u64 {
    status(lab, i)["forwarding"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_u64())
        .unwrap_or(0)
}

fn group(lab: &Lab, i: usize) -> serde_json::Value {
    status(lab, i)["groups"][0].clone()
}

/// Every connection kept talking to `node` to the end: no reset, no lost or wrong answer.
fn all_served_by(reports: &[ConnReport], node: &str, logs: &str) {
    for (k, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "connection {k}: {:?}\n{logs}", r.error);
        assert_eq!(r.answered, r.sent, "connection {k}");
        assert!(r.answered > 50, "connection {k} barely talked: {r:?}");
        assert_eq!(r.nodes, [node], "connection {k} changed node");
    }
}

fn logs(lab: &Lab) -> String {
    (0..lab.nodes.len())
        .map(|i| {
            let stats =
                lab.nodes[i].sh("ethtool -S eth0 | grep xdp; nstat -az TcpInCsumErrors TcpOutRsts");
            format!(
                "--- node {}\n{}{}",
                i + 1,
                lab.log_text(i),
                String::from_utf8_lossy(&stats.stdout)
            )
        })
        .collect::<String>()
        + &lab.switch_ok("ip -s link").unwrap_or_default()
}

fn demote_keeps_connections(mode: &str) {
    let (lab, _servers) = lab("drain", 2, mode);
    let chat = Chatter::start(&lab.client, VIP, 20, EVERY).unwrap();
    std::thread::sleep(SEC);
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(SEC + SEC / 2);
    // New connections land on the new master, while the old ones go on.
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n2");
    let reports = chat.finish();
    all_served_by(&reports, "n1", &logs(&lab));
    assert!(counter(&lab, 1, "forwarded") > 0, "{}", status(&lab, 1));
    assert_eq!(counter(&lab, 1, "from_peer"), 0);
    assert_eq!(
        counter(&lab, 0, "forwarded"),
        0,
        "the old master never forwards"
    );
    let fwd = group(&lab, 1)["forwarding"].clone();
    assert_eq!(fwd["to"], "10.0.0.1", "{fwd}");
    assert_eq!(fwd["mac"], lab.nodes[0].mac(), "{fwd}");
    assert!(group(&lab, 0)["forwarding"].is_null());
}

#[test]
fn established_connections_survive_a_demote_tc() {
    demote_keeps_connections(MODES[0]);
}

#[test]
fn established_connections_survive_a_demote_xdp_generic() {
    demote_keeps_connections(MODES[1]);
}

#[test]
fn established_connections_survive_a_demote_xdp_native() {
    demote_keeps_connections(MODES[2]);
}

#[test]
fn demote_drain_shows_draining_until_the_connections_close() {
    let (lab, _servers) = lab("drainwait", 2, "auto");
    let chat = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    lab.vipd_ctl(0, &["demote", "1", "--drain"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    assert_eq!(lab.state(0, 1), "DRAINING");
    assert!(
        Lab::wait_for(2 * SEC, || group(&lab, 0)["draining"]["connections"] == 10),
        "{}",
        group(&lab, 0)
    );
    let left = group(&lab, 0)["draining"]["remaining_secs"]
        .as_f64()
        .unwrap();
    assert!(left > 50.0 && left <= 60.0, "the default limit: {left}");
    std::thread::sleep(SEC);
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n2");
    assert_eq!(lab.state(0, 1), "DRAINING");
    let reports = chat.finish();
    all_served_by(&reports, "n1", &logs(&lab));
    // The connections closed: the drain ends at the next count.
    assert!(
        lab.wait_state(0, 1, "BACKUP", 2 * SEC),
        "{}",
        group(&lab, 0)
    );
    assert!(group(&lab, 0)["draining"].is_null());
    assert!(lab.log_text(0).contains("drained"));
}

#[test]
fn the_drain_limit_is_honoured_and_the_connection_still_served() {
    let (lab, _servers) = lab("drainlimit", 2, "auto");
    let chat = Chatter::start(&lab.client, VIP, 1, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    let started = Instant::now();
    lab.vipd_ctl(0, &["demote", "1", "--drain=2"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    assert!(Lab::wait_for(
        SEC,
        || group(&lab, 0)["draining"]["connections"] == 1
    ));
    assert!(
        lab.wait_state(0, 1, "BACKUP", 4 * SEC),
        "{}",
        group(&lab, 0)
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "ended after {took:?}");
    assert!(lab.log_text(0).contains("drain limit reached"));
    // The limit ends the wait, not the connection: the new master still forwards it.
    std::thread::sleep(SEC / 2);
    all_served_by(&chat.finish(), "n1", &logs(&lab));
}

#[test]
fn a_stop_drains_then_exits() {
    let mut lab = Lab::new("drainstop", 2).unwrap();
    lab.as_user = true;
    let _servers: Vec<EchoServer> = (0..2)
        .map(|i| EchoServer::start(&lab.nodes[i], &format!("n{}", i + 1)).unwrap())
        .collect();
    let pid = lab.start_node(0, 0, &[]).unwrap();
    lab.start_node(1, 100, &[]).unwrap();
    lab.expect_roles(&["MASTER", "BACKUP"]);
    let chat = Chatter::start(&lab.client, VIP, 5, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    // systemctl stop: SIGTERM.
    assert!(
        !lab.signal(pid, libc::SIGTERM, SEC),
        "exited with connections open"
    );
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    assert_eq!(
        lab.state(0, 1),
        "DRAINING",
        "stopping, draining, still answering status"
    );
    std::thread::sleep(SEC);
    let reports = chat.finish();
    all_served_by(&reports, "n1", &logs(&lab));
    assert!(lab.signal(pid, 0, 2 * SEC), "still running once drained");
    assert!(lab.log_text(0).contains("vipd stopped"));
}

#[test]
fn back_and_forth_forwards_each_connection_once_to_its_own_node_tc() {
    back_and_forth(MODES[0]);
}

#[test]
fn back_and_forth_forwards_each_connection_once_to_its_own_node_xdp_generic() {
    back_and_forth(MODES[1]);
}

#[test]
fn back_and_forth_forwards_each_connection_once_to_its_own_node_xdp_native() {
    back_and_forth(MODES[2]);
}

fn back_and_forth(mode: &str) {
    let (lab, _servers) = lab("drainbaf", 2, mode);
    let on_a = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    // A to B: A's connections go on through B.
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(SEC);
    let on_b = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    // And back to A while both sets talk: B's connections go on through A, A's are A's.
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    lab.vipd_ctl(1, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(2 * SEC);
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n1");
    let forwarded_b = counter(&lab, 1, "forwarded");
    all_served_by(&on_a.finish(), "n1", &logs(&lab));
    all_served_by(&on_b.finish(), "n2", &logs(&lab));
    assert!(forwarded_b > 0, "B forwarded A's connections while MASTER");
    // B's tail after its own hand-over (master-down at most) ends, and with it B's
    // forwarding.
    assert!(
        Lab::wait_for(3 * SEC, || group(&lab, 1)["forwarding"].is_null()),
        "{}",
        group(&lab, 1)
    );
    assert!(
        counter(&lab, 0, "forwarded") > 0,
        "A forwards B's connections"
    );
    // No frame went back where it came from: during its tail B got B's connections'
    // segments forwarded by A, and served them instead of sending them back (B
    // forwarded nothing more once the clients followed A).
    assert!(counter(&lab, 1, "from_peer") > 0);
    assert_eq!(counter(&lab, 1, "forwarded"), forwarded_b);
    assert_eq!(group(&lab, 0)["forwarding"]["to"], "10.0.0.2");
}

#[test]
fn a_third_node_that_took_over_too_stops_forwarding_and_connections_survive() {
    let (lab, _servers) = lab("drain3", 3, "auto");
    let chat = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(2 * SEC);
    assert_eq!(lab.state(2, 1), "BACKUP");
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n2");
    all_served_by(&chat.finish(), "n1", &logs(&lab));
    // It stepped down when it heard the better node 2; its tail ends too.
    assert!(
        Lab::wait_for(3 * SEC, || group(&lab, 2)["forwarding"].is_null()),
        "{}",
        group(&lab, 2)
    );
    for i in 0..3 {
        assert_eq!(counter(&lab, i, "from_peer"), 0, "node {}", i + 1);
    }
    assert_eq!(counter(&lab, 0, "forwarded"), 0);
}

#[test]
fn a_killed_old_master_daemon_leaves_its_connections_served() {
    let (mut lab, _servers) = lab("drainkill", 2, "auto");
    let chat = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    // kill -9 vipd on the old master: its stack and sockets stay, and so do its programs.
    let pid = lab.status(0).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    std::thread::sleep(2 * SEC);
    all_served_by(&chat.finish(), "n1", &logs(&lab));
    assert_eq!(lab.state(1, 1), "MASTER");
}

#[test]
fn a_dead_old_master_loses_its_connections_and_nothing_loops() {
    let (lab, _servers) = lab("draindeath", 2, "auto");
    let chat = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(SEC / 2);
    // The old master's node dies: its link goes down, frames to it go nowhere.
    lab.nodes[0].link(false).unwrap();
    std::thread::sleep(SEC);
    let before = counter(&lab, 1, "forwarded");
    std::thread::sleep(3 * SEC);
    let after = counter(&lab, 1, "forwarded");
    // Only the clients' retransmissions (backing off) are forwarded, each once: a loop
    // would forward without end.
    assert!(after - before < 300, "{before} -> {after}");
    assert_eq!(counter(&lab, 1, "from_peer"), 0);
    // The new master serves new connections; the dead node's connections time out.
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n2");
    let reports = chat.finish();
    assert!(reports.iter().all(|r| r.nodes == ["n1"]));
    assert_eq!(lab.state(1, 1), "MASTER");
}

#[test]
fn a_split_brain_never_bounces_a_frame() {
    let (lab, _servers) = lab("drainsplit", 2, "auto");
    let on_a = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    // A hands over to B, which forwards A's connections to A; A may take part again.
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    std::thread::sleep(SEC / 2);
    // Split: neither hears the other. A's master-down expires and it takes over too
    // (no bow-out: it forwards nothing), announcing itself to the client.
    lab.block_multicast_to(0, true).unwrap();
    lab.block_multicast_to(1, true).unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", 5 * SEC), "{}", logs(&lab));
    assert_eq!(lab.state(1, 1), "MASTER");
    assert!(group(&lab, 0)["forwarding"].is_null());
    assert_eq!(group(&lab, 1)["forwarding"]["to"], "10.0.0.1");
    std::thread::sleep(SEC);
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n1");
    // Healed: B hears the better A and steps down, which ends its forwarding.
    lab.block_multicast_to(0, false).unwrap();
    lab.block_multicast_to(1, false).unwrap();
    assert!(lab.wait_state(1, 1, "BACKUP", 5 * SEC), "{}", logs(&lab));
    // After its tail (master-down at most).
    assert!(
        Lab::wait_for(4 * SEC, || group(&lab, 1)["forwarding"].is_null()),
        "{}",
        group(&lab, 1)
    );
    std::thread::sleep(SEC / 2);
    all_served_by(&on_a.finish(), "n1", &logs(&lab));
    // A never forwarded, and no frame came back to B from A, its previous master.
    assert_eq!(counter(&lab, 0, "forwarded"), 0);
    assert_eq!(counter(&lab, 0, "from_peer"), 0);
    assert_eq!(counter(&lab, 1, "from_peer"), 0);
}

#[test]
fn move_mode_keeps_the_address_for_the_forwarded_connections() {
    let mut lab = Lab::new("drainmove", 2).unwrap();
    lab.as_user = true;
    let _servers: Vec<EchoServer> = (0..2)
        .map(|i| EchoServer::start(&lab.nodes[i], &format!("n{}", i + 1)).unwrap())
        .collect();
    for i in 0..2 {
        let conf = lab.dir().join(format!("n{}.toml", i + 1));
        std::fs::write(
            &conf,
            format!(
                "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [\"{VIP}/24\"]\n\
                 password = \"secret\"\nsrcip = \"{}\"\nadvskew = {}\naddress_mode = \"move\"\n",
                vipd_tests::node_addr(i + 1),
                [0, 100][i]
            ),
        )
        .unwrap();
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let conf = conf.to_string_lossy().into_owned();
        lab.start_vipd(i, &["run", "--config", &conf]).unwrap();
    }
    lab.expect_roles(&["MASTER", "BACKUP"]);
    assert!(
        !lab.nodes[1].has_addr(VIP),
        "move: only the MASTER has the address"
    );
    let chat = Chatter::start(&lab.client, VIP, 10, EVERY).unwrap();
    std::thread::sleep(SEC / 2);
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", 3 * SEC), "{}", logs(&lab));
    std::thread::sleep(SEC + SEC / 2);
    assert_eq!(who_answers(&lab.client, VIP).unwrap(), "n2");
    all_served_by(&chat.finish(), "n1", &logs(&lab));
    assert!(lab.nodes[1].has_addr(VIP));
    assert!(
        lab.nodes[0].has_addr(VIP),
        "kept while the new master forwards to it"
    );
}

/// The forwarding decision of the XDP program on hand-built frames (BPF_PROG_TEST_RUN).
#[test]
fn the_program_forwards_only_what_no_socket_owns_to_the_previous_master_while_master() {
    use vipd::kernel::clock::monotonic_ns;
    use vipd::kernel::dataplane::Dataplane;
    use vipd_common::{DrainTarget, VipOwner};
    use vipd_tests::{frames, in_netns};
    const XDP_PASS: u32 = 2;
    const XDP_REDIRECT: u32 = 4;
    let lab = Lab::new("drainprog", 1).unwrap();
    let pin = lab.pin_dir(0);
    in_netns(&lab.nodes[0].ns, move || {
        let mut dp = Dataplane::load(&pin, &[]).expect("load eBPF");
        let ifindex = vipd::kernel::dataplane::ifindex("eth0").unwrap();
        let run = |dp: &Dataplane, frame: &[u8]| dp.test_run_xdp(frame, ifindex, 1).unwrap().0;
        let count = |dp: &Dataplane, name: &str| {
            dp.drain_counters()
                .unwrap()
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
        };
        let syn = frames::tcp_syn(VIP);
        let mut ack = syn.clone();
        ack[14 + 20 + 13] = 0x10;
        // No drain: nothing looked up, nothing counted.
        assert_eq!(run(&dp, &ack), XDP_PASS);
        let total =
            |dp: &Dataplane| -> u64 { dp.drain_counters().unwrap().iter().map(|c| c.1).sum() };
        assert_eq!(total(&dp), 0);
        let now = monotonic_ns();
        let s10 = 10_000_000_000;
        let owned = VipOwner {
            renewed_ns: now,
            firm_until_ns: now + s10,
            grace_until_ns: now + s10,
            vhid: 1,
            _pad: 0,
        };
        dp.set_owner(ifindex, VIP, owned).unwrap();
        let target = DrainTarget {
            until_ns: now + s10,
            peer_mac: [2, 0, 0, 0, 0, 0x0a],
            own_mac: [2, 0, 0, 0, 0, 0x0b],
            peer_addr: u32::from_ne_bytes([10, 0, 0, 1]),
            vhid: 1,
            flags: 0,
        };
        dp.set_forward(ifindex, VIP, Some(target)).unwrap();
        // A segment of no connection here: to the previous master.
        assert_eq!(run(&dp, &ack), XDP_REDIRECT);
        assert_eq!(count(&dp, "forwarded"), 1);
        // A listener is no connection: still forwarded (no syncookie of its own).
        let _listener = std::net::TcpListener::bind(("0.0.0.0", 80)).unwrap();
        assert_eq!(run(&dp, &ack), XDP_REDIRECT);
        assert_eq!(count(&dp, "forwarded"), 2);
        // A SYN stays: new connections land here.
        assert_eq!(run(&dp, &syn), XDP_PASS);
        assert_eq!(count(&dp, "syn"), 1);
        // Whatever the previous master sends is served here, never sent back.
        let mut from_peer = ack.clone();
        from_peer[6..12].copy_from_slice(&target.peer_mac);
        assert_eq!(run(&dp, &from_peer), XDP_PASS);
        assert_eq!(count(&dp, "from_peer"), 1);
        // Nor anything another CARP peer sends (a frame it forwarded here, say).
        let other_peer = [2, 0, 0, 0, 0, 0x0c];
        dp.add_peer_mac(ifindex, other_peer).unwrap();
        let mut from_other = ack.clone();
        from_other[6..12].copy_from_slice(&other_peer);
        assert_eq!(run(&dp, &from_other), XDP_PASS);
        assert_eq!(count(&dp, "from_peer"), 2);
        // Not MASTER (the lease is over): nothing forwarded, unless this node has just
        // handed the VIP over (a tail); past the deadline: nothing either.
        dp.set_owner(ifindex, VIP, VipOwner::NOT_OWNED).unwrap();
        assert_eq!(run(&dp, &ack), XDP_PASS);
        let tail = DrainTarget {
            flags: vipd_common::DRAIN_TAIL,
            ..target
        };
        dp.set_forward(ifindex, VIP, Some(tail)).unwrap();
        assert_eq!(run(&dp, &ack), XDP_REDIRECT);
        assert_eq!(count(&dp, "forwarded"), 3);
        dp.set_forward(ifindex, VIP, Some(target)).unwrap();
        dp.set_owner(ifindex, VIP, owned).unwrap();
        let past = DrainTarget {
            until_ns: now - 1,
            ..target
        };
        dp.set_forward(ifindex, VIP, Some(past)).unwrap();
        assert_eq!(run(&dp, &ack), XDP_PASS);
        assert_eq!(count(&dp, "inactive"), 2);
        // Another VIP is not touched; stopping removes the entry.
        assert_eq!(run(&dp, &frames::tcp_syn(vipd_tests::VIP2)), XDP_PASS);
        dp.set_forward(ifindex, VIP, None).unwrap();
        assert_eq!(run(&dp, &ack), XDP_PASS);
        assert_eq!(count(&dp, "forwarded"), 3);
        assert!(dp.forwards().is_empty());
        // A group a reload removes forwards nothing any more.
        dp.set_forward(ifindex, VIP, Some(target)).unwrap();
        dp.retain(|_, a| a != VIP, |_, _| true).unwrap();
        assert!(dp.forwards().is_empty());
        assert_eq!(run(&dp, &ack), XDP_PASS);
        assert_eq!(count(&dp, "forwarded"), 3);
    });
}
