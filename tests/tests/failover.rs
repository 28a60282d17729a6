//! vipd daemons in a netns lab: election, ARP ownership in XDP, failover and hand-off, as a
//! client sees them with real ping and arping.
use std::time::{Duration, Instant};

use vipd_common::Reason;
use vipd_tests::{Lab, VIP, VIP2};

const SEC: Duration = Duration::from_secs(1);

/// Starts vipd on every node with the given skews; waits for node `master` to win.
fn cluster(tag: &str, skews: &[u8], master: usize) -> Lab {
    let mut lab = Lab::new(tag, skews.len()).unwrap();
    for (i, skew) in skews.iter().enumerate() {
        lab.start_node(i, *skew, &[]).unwrap();
    }
    assert!(
        lab.wait_state(master, 1, "MASTER", 8 * SEC),
        "node {} never became MASTER:\n{}",
        master + 1,
        lab.log_text(master)
    );
    for i in (0..skews.len()).filter(|i| *i != master) {
        assert!(
            lab.wait_state(i, 1, "BACKUP", 2 * SEC),
            "{}",
            lab.log_text(i)
        );
    }
    lab
}

fn xdp_counter(lab: &Lab, i: usize, reason: Reason) -> u64 {
    let s = lab.status(i).unwrap();
    s.xdp
        .iter()
        .find(|(n, _)| n == reason.name())
        .map(|(_, v)| *v)
        .unwrap()
}

#[test]
fn lower_skew_wins_and_is_the_only_arp_owner() {
    let lab = cluster("owner", &[0, 100], 0);
    // The VIP is configured on both nodes; only the MASTER answers ARP for it.
    assert!(lab.nodes[0].has_addr(VIP) && lab.nodes[1].has_addr(VIP));
    let owners = lab.arp_owners(VIP, 4);
    assert_eq!(
        owners,
        vec![lab.nodes[0].mac()],
        "arping sees exactly the MASTER"
    );
    assert!(
        xdp_counter(&lab, 1, Reason::DropArpNotOwned) >= 1,
        "the BACKUP dropped the requests in XDP"
    );
    // The BACKUP cannot claim the VIP either: ARP it would send from the VIP is dropped on
    // egress, so the client never answers it.
    let out = lab.nodes[1].sh(&format!(
        "arping -c 2 -w 2 -I eth0 -s {VIP} {}",
        lab.client.addr
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Received 0 response"),
        "backup's ARP from the VIP got out: {text}"
    );
    assert!(xdp_counter(&lab, 1, Reason::DropTxArpNotOwned) >= 2);
    // The MASTER may.
    let out = lab.nodes[0].sh(&format!(
        "arping -c 1 -w 2 -I eth0 -s {VIP} {}",
        lab.client.addr
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received 1 response"));
    let st = lab.status(1).unwrap();
    assert_eq!(st.groups[0].master.as_deref(), Some("10.0.0.1"));
}

#[test]
fn master_link_down_backup_takes_over_and_pings_resume() {
    let mut lab = cluster("linkdown", &[0, 100], 0);
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 700)
        .unwrap();
    std::thread::sleep(SEC);
    lab.nodes[0].link(false).unwrap();
    let cut = Instant::now();
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    let took = cut.elapsed();
    // master-down for advskew 100 is 3 + 100/256 s; allow one advertisement interval more.
    let bound = Duration::from_secs_f64(3.0 + 100.0 / 256.0 + 1.0 + 100.0 / 256.0);
    assert!(took <= bound, "takeover took {took:?}, bound {bound:?}");
    assert_ne!(
        lab.state(0, 1),
        "MASTER",
        "a node without link does not stay MASTER"
    );
    let report = lab.finish_probe(probe).unwrap();
    assert!(report.received > 0 && report.lost() < report.sent);
    // Pings resumed: the client's last probes were answered, by node 2.
    assert!(report.longest_gap < bound + SEC, "{report:?}");
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);
    lab.client
        .ok(&format!("ping -c 3 -i 0.1 -W 1 {VIP}"))
        .unwrap();
}

#[test]
fn killed_master_stops_claiming_and_restart_stays_backup() {
    let mut lab = cluster("kill9", &[0, 100], 0);
    let pid = lab.status(0).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    // After master-down the peer owns the VIP and the dead daemon's node answers no ARP,
    // although the VIP is still configured there and nothing of vipd runs.
    assert!(
        lab.wait_state(1, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(lab.nodes[0].has_addr(VIP));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lab.arp_owners(VIP, 4),
        vec![lab.nodes[1].mac()],
        "exactly one ARP owner"
    );
    // Restarted without -P, the better node stays BACKUP and adopts the attached program.
    lab.start_node(0, 0, &[]).unwrap();
    assert!(
        lab.wait_state(0, 1, "BACKUP", 5 * SEC),
        "{}",
        lab.log_text(0)
    );
    std::thread::sleep(4 * SEC);
    assert_eq!(lab.state(0, 1), "BACKUP");
    assert_eq!(lab.state(1, 1), "MASTER");
    assert!(
        lab.log_text(0).contains("adopted=true"),
        "{}",
        lab.log_text(0)
    );
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);
}

#[test]
fn graceful_demote_loses_no_probe() {
    let mut lab = cluster("demote", &[0, 100], 0);
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 400)
        .unwrap();
    std::thread::sleep(SEC);
    lab.vipd_ctl(0, &["demote", "--all"]).unwrap();
    assert!(
        lab.wait_state(1, 1, "MASTER", SEC),
        "bow-out gives an immediate takeover"
    );
    let report = lab.finish_probe(probe).unwrap();
    assert_eq!(report.lost(), 0, "{report:?}");
    assert_eq!(report.sent, 400);
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);
    // Demoted, node 1 stays BACKUP although it has the lower skew; promoted, it does not
    // preempt (no -P) but is eligible again.
    std::thread::sleep(4 * SEC);
    assert_eq!(lab.state(0, 1), "BACKUP");
    assert!(lab.status(0).unwrap().groups[0].demoted);
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    assert!(!lab.status(0).unwrap().groups[0].demoted);
}

#[test]
fn sigterm_hands_over_and_exits_clean() {
    let mut lab = cluster("sigterm", &[0, 100], 0);
    let pid = lab.status(0).unwrap().pid;
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 300)
        .unwrap();
    std::thread::sleep(SEC);
    assert!(
        lab.signal(pid, libc::SIGTERM, 5 * SEC),
        "vipd exits on SIGTERM"
    );
    assert!(lab.wait_state(1, 1, "MASTER", SEC));
    let report = lab.finish_probe(probe).unwrap();
    assert_eq!(report.lost(), 0, "{report:?}");
    // Clean exit: the address vipd added is gone and nothing is attached any more.
    assert!(!lab.nodes[0].has_addr(VIP));
    let xdp = lab.nodes[0].ok("ip -d link show dev eth0").unwrap();
    assert!(!xdp.contains("prog/xdp"), "{xdp}");
}

#[test]
fn three_nodes_take_over_in_skew_order() {
    let mut lab = cluster("three", &[10, 50, 100], 0);
    let pid = lab.status(0).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    assert!(lab.wait_state(1, 1, "MASTER", 6 * SEC));
    assert_eq!(lab.state(2, 1), "BACKUP");
    let pid = lab.status(1).unwrap().pid;
    assert!(lab.signal(pid, libc::SIGKILL, 2 * SEC));
    assert!(lab.wait_state(2, 1, "MASTER", 6 * SEC));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[2].mac()]);
}

#[test]
fn peer_with_wrong_password_is_ignored_and_counted() {
    let mut lab = Lab::new("badpass", 2).unwrap();
    lab.start_node(0, 0, &[]).unwrap();
    let mut flags = lab.ucarp_flags(1, 100, &[]);
    let p = flags.iter().position(|f| f == "secret").unwrap();
    flags[p] = "wrong".into();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    lab.start_vipd(1, &args).unwrap();
    // Each ignores the other: both end up MASTER of their own view, and each counts the
    // other's advertisements as bad HMAC.
    assert!(lab.wait_state(0, 1, "MASTER", 6 * SEC));
    assert!(lab.wait_state(1, 1, "MASTER", 6 * SEC));
    std::thread::sleep(2 * SEC);
    let st = lab.status(0).unwrap();
    let bad = st.groups[0]
        .rejected
        .iter()
        .find(|(r, _)| r == "bad_hmac")
        .map(|(_, n)| *n)
        .unwrap_or(0);
    assert!(bad >= 2, "{st:?}");
    assert_eq!(st.groups[0].adverts_received, 0);
    let warnings = lab
        .log_text(0)
        .lines()
        .filter(|l| l.contains("advertisements rejected") && l.contains("bad_hmac"))
        .count();
    assert_eq!(
        warnings, 1,
        "rejections are logged as counts at most once per 10 s, not once per packet"
    );
}

#[test]
fn two_groups_on_one_interface_run_active_active() {
    // Active-active as operators set it up: each group preempts, so each node ends up
    // MASTER of the group it is better for, whichever node started first.
    let mut lab = Lab::new("twogroups", 2).unwrap();
    for i in 0..2 {
        let (s1, s2) = if i == 0 { (0, 100) } else { (100, 0) };
        let conf = format!(
            "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [\"{VIP}/24\"]\npassword = \"one\"\nadvskew = {s1}\npreempt = true\n\n\
             [[group]]\ninterface = \"eth0\"\nvhid = 2\nvips = [\"{VIP2}/24\"]\npassword = \"two\"\nadvskew = {s2}\npreempt = true\n"
        );
        let path = lab.dir().join(format!("n{i}.toml"));
        std::fs::write(&path, conf).unwrap();
        lab.start_vipd(i, &["run", "--config", &path.to_string_lossy()])
            .unwrap();
    }
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(1, 2, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert_eq!(lab.state(0, 2), "BACKUP");
    assert_eq!(lab.state(1, 1), "BACKUP");
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[0].mac()]);
    assert_eq!(lab.arp_owners(VIP2, 2), vec![lab.nodes[1].mac()]);
}

#[test]
fn bad_flags_and_config_exit_2_with_one_line() {
    let lab = Lab::new("badflags", 1).unwrap();
    let run = |args: &str| {
        let out = lab.nodes[0].sh(&format!("{} {args}", vipd_tests::vipd_bin().display()));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("-i eth0 -v 300 -p x -a 10.0.0.100");
    assert_eq!(code, Some(2));
    assert_eq!(err.trim(), "vipd: --vhid (-v): 300 is not in 1..=255");
    let (code, err) = run("-i eth0 -v 1 -p x -a 10.0.0.300");
    assert_eq!(code, Some(2));
    assert!(
        err.trim().starts_with("vipd: --addr (-a):") && err.lines().count() == 1,
        "{err}"
    );
    let (code, err) = run("-i eth0 -v 1 -a 10.0.0.100");
    assert_eq!(code, Some(2));
    assert!(err.contains("--pass (-p)"), "{err}");
    let (code, err) = run("--rt-priority 100 -i eth0 -v 1 -p x -a 10.0.0.100");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--rt-priority") && err.lines().count() == 1,
        "{err}"
    );
    let (code, err) = run("--frobnicate");
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    let bad = lab.dir().join("bad.toml");
    std::fs::write(
        &bad,
        "[[group]]\ninterface='eth0'\nvhid=1\nvips=['10.0.0.100']\npassword='x'\nadvskew=999\n",
    )
    .unwrap();
    let (code, err) = run(&format!("check-config {}", bad.display()));
    assert_eq!(code, Some(2));
    assert_eq!(err.trim(), "vipd: group[0].advskew: 999 is not in 0..=254");
}

#[test]
fn daemon_runs_sched_fifo_and_its_scripts_do_not() {
    let mut lab = Lab::new("sched", 1).unwrap();
    let up = lab.dir().join("up.sh");
    let seen = lab.dir().join("up-sched");
    std::fs::write(&up, format!("#!/bin/sh\nchrt -p $$ > {}\n", seen.display())).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&up)
        .status()
        .unwrap();
    let pid = lab
        .start_node(0, 0, &["-u", &up.to_string_lossy()])
        .unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let out = std::process::Command::new("chrt")
        .args(["-p", &pid.to_string()])
        .output()
        .unwrap();
    let daemon = String::from_utf8_lossy(&out.stdout);
    assert!(
        daemon.contains("SCHED_FIFO") && daemon.contains("priority: 10"),
        "vipd's own scheduling: {daemon}"
    );
    assert!(
        Lab::wait_for(5 * SEC, || std::fs::read_to_string(&seen)
            .is_ok_and(|s| s.contains("priority"))),
        "the up script did not run"
    );
    let script = std::fs::read_to_string(&seen).unwrap();
    assert!(
        script.contains("SCHED_OTHER"),
        "the up script must run as an ordinary process: {script}"
    );
}
