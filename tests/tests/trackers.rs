//! Service-aware failover: every kind of tracker moves the VIP when its condition changes
//! (and back, with preemption), a FAULT hand-off loses no ping, and demotion goes on the
//! wire as ucarp peers and as vipd peers understand it. vipd runs as users run it, with
//! `vipd run --config FILE`.
use std::path::Path;
use std::time::Duration;

use vipd_tests::{Lab, VIP, node_addr};

const SEC: Duration = Duration::from_secs(1);

/// A configuration for node `i` (1-based address) of group 1 with `extra` group keys and
/// `trackers` appended.
fn config(i: usize, advskew: u8, extra: &str, trackers: &str) -> String {
    format!(
        "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [\"{VIP}/24\"]\n\
         srcip = \"{}\"\npassword = \"secret\"\nadvskew = {advskew}\n{extra}\n{trackers}",
        node_addr(i + 1)
    )
}

fn start_with(lab: &mut Lab, i: usize, text: &str) {
    let path = lab.dir().join(format!("n{}.toml", i + 1));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let path = path.to_string_lossy().into_owned();
    lab.start_vipd(i, &["run", "--config", &path]).unwrap();
}

/// Two nodes: node 1 (advskew 0) tracks with `track` (a group key) and `trackers`, node 2
/// (advskew 100) preempts and tracks nothing. Node 1 becomes MASTER.
fn tracked_pair(tag: &str, track: &str, trackers: impl Fn(&Path) -> String) -> Lab {
    let mut lab = Lab::new(tag, 2).unwrap();
    lab.as_user = true;
    let dir = lab.dir().to_owned();
    let n1 = config(0, 0, &format!("preempt = true\n{track}"), &trackers(&dir));
    start_with(&mut lab, 0, &n1);
    let n2 = config(1, 100, "preempt = true", "");
    start_with(&mut lab, 1, &n2);
    lab.expect_roles(&["MASTER", "BACKUP"]);
    lab
}

/// Breaks node 1's tracked condition, expects node 2 to own the VIP alone, repairs it and
/// expects node 1 back (it preempts).
fn moves_and_back(lab: &Lab, break_it: &dyn Fn(&Lab), repair: &dyn Fn(&Lab), faults: bool) {
    break_it(lab);
    assert!(
        lab.wait_state(1, 1, "MASTER", 5 * SEC),
        "{}",
        lab.log_text(0)
    );
    let state = if faults { "FAULT" } else { "BACKUP" };
    assert!(lab.wait_state(0, 1, state, 2 * SEC), "{}", lab.log_text(0));
    assert_eq!(
        lab.arp_owners(VIP, 2),
        vec![lab.nodes[1].mac()],
        "n1 {} n2 {}\n{}\n{}",
        lab.nodes[0].mac(),
        lab.nodes[1].mac(),
        lab.log_text(0),
        lab.log_text(1)
    );
    repair(lab);
    assert!(
        lab.wait_state(0, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(lab.wait_state(1, 1, "BACKUP", 2 * SEC));
    assert_eq!(
        lab.arp_owners(VIP, 2),
        vec![lab.nodes[0].mac()],
        "n1 {} n2 {}\n{}\n{}",
        lab.nodes[0].mac(),
        lab.nodes[1].mac(),
        lab.log_text(0),
        lab.log_text(1)
    );
}

#[test]
fn a_dead_process_hands_over_with_no_ping_lost_and_its_return_takes_back() {
    let pidfile = |d: &Path| d.join("service.pid");
    let start_service = |lab: &Lab| {
        let pid = pidfile(lab.dir());
        lab.nodes[0]
            .ok(&format!(
                "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $! > {}",
                pid.display()
            ))
            .unwrap();
    };
    let mut lab = Lab::new("trkproc", 2).unwrap();
    lab.as_user = true;
    start_service(&lab);
    let dir = lab.dir().to_owned();
    let trackers = format!(
        "[[tracker]]\nname = \"svc\"\ntype = \"process\"\npidfile = \"{}\"\n",
        pidfile(&dir).display()
    );
    let n1 = config(
        0,
        0,
        "preempt = true\ntrack = [{ tracker = \"svc\" }]",
        &trackers,
    );
    start_with(&mut lab, 0, &n1);
    start_with(&mut lab, 1, &config(1, 100, "preempt = true", ""));
    lab.expect_roles(&["MASTER", "BACKUP"]);
    let probe = lab
        .start_probe(VIP, Duration::from_millis(10), 300)
        .unwrap();
    std::thread::sleep(SEC);
    let kill = |lab: &Lab| {
        let pid = std::fs::read_to_string(pidfile(lab.dir())).unwrap();
        lab.nodes[0].ok(&format!("kill {}", pid.trim())).unwrap();
    };
    kill(&lab);
    assert!(lab.wait_state(1, 1, "MASTER", SEC), "{}", lab.log_text(0));
    assert_eq!(lab.state(0, 1), "FAULT");
    let report = lab.finish_probe(probe).unwrap();
    assert_eq!(report.lost(), 0, "{report:?}");
    // In FAULT it takes nothing back, even with preemption.
    std::thread::sleep(2 * SEC);
    assert_eq!(lab.state(0, 1), "FAULT");
    start_service(&lab);
    assert!(
        lab.wait_state(0, 1, "MASTER", 6 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[0].mac()]);
}

#[test]
fn tcp_and_http_probes_move_the_vip() {
    for (tag, kind) in [("trktcp", "tcp"), ("trkhttp", "http")] {
        let trackers = move |_: &Path| {
            format!(
                "[[tracker]]\nname = \"web\"\ntype = \"{kind}\"\naddress = \"127.0.0.1:8080\"\n\
                 interval_ms = 50\ntimeout_ms = 40\nfall = 2\nrise = 2\n"
            )
        };
        let serve = |lab: &Lab| {
            lab.nodes[0]
                .ok(&format!(
                    "cd {} && setsid python3 -m http.server 8080 --bind 127.0.0.1 \
                     </dev/null >/dev/null 2>&1 & \
                     for i in $(seq 200); do \
                     curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done",
                    lab.dir().display()
                ))
                .unwrap();
        };
        let mut lab = Lab::new(tag, 2).unwrap();
        lab.as_user = true;
        serve(&lab);
        let dir = lab.dir().to_owned();
        let n1 = config(
            0,
            0,
            "preempt = true\ntrack = [{ tracker = \"web\" }]",
            &trackers(&dir),
        );
        start_with(&mut lab, 0, &n1);
        start_with(&mut lab, 1, &config(1, 100, "preempt = true", ""));
        lab.expect_roles(&["MASTER", "BACKUP"]);
        let stop = |lab: &Lab| {
            lab.nodes[0].ok("pkill -f '[h]ttp.server 8080'").unwrap();
        };
        moves_and_back(&lab, &stop, &serve, true);
    }
}

#[test]
fn script_file_and_interface_trackers_move_the_vip() {
    // A script: healthy while a flag file is absent.
    let lab = tracked_pair("trkscript", "track = [{ tracker = \"check\" }]", |d| {
        let script = d.join("check.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ntest ! -e {}\n", d.join("broken").display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        format!(
            "[[tracker]]\nname = \"check\"\ntype = \"script\"\ncommand = \"{}\"\n\
             interval_ms = {}\ntimeout_ms = {}\n",
            script.display(),
            100 * vipd_tests::slowdown(),
            90 * vipd_tests::slowdown()
        )
    });
    let flag = lab.dir().join("broken");
    let (f1, f2) = (flag.clone(), flag.clone());
    moves_and_back(
        &lab,
        &move |_| std::fs::write(&f1, "").unwrap(),
        &move |_| std::fs::remove_file(&f2).unwrap(),
        true,
    );
    drop(lab);

    // A file with a weight: its value times the weight demotes; node 2 preempts.
    let lab = tracked_pair(
        "trkfile",
        "track = [{ tracker = \"maint\", weight = 200 }]",
        |d| {
            std::fs::write(d.join("maint"), "0\n").unwrap();
            format!(
                "[[tracker]]\nname = \"maint\"\ntype = \"file\"\npath = \"{}\"\n",
                d.join("maint").display()
            )
        },
    );
    let file = lab.dir().join("maint");
    let (f1, f2) = (file.clone(), file.clone());
    // `vipd status` says why a group is demoted.
    let check = file.clone();
    let demoted = move |lab: &Lab| {
        std::fs::write(&check, "1\n").unwrap();
        assert!(Lab::wait_for(2 * SEC, || lab.status(0).is_ok_and(|s| s
            .groups[0]
            .demotion
            == 200
            && s.groups[0].failing == ["maint"])));
    };
    demoted(&lab);
    std::fs::write(&file, "0\n").unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", 6 * SEC));
    moves_and_back(
        &lab,
        &move |_| std::fs::write(&f1, "1\n").unwrap(),
        &move |_| std::fs::write(&f2, "0\n").unwrap(),
        false,
    );
    drop(lab);

    // Another link of the node.
    let mut lab = Lab::new("trklink", 2).unwrap();
    lab.as_user = true;
    lab.add_link(0, "eth1").unwrap();
    lab.nodes[0].ok("ip link set eth1 up").unwrap();
    let trackers = "[[tracker]]\nname = \"uplink\"\ntype = \"interface\"\ninterface = \"eth1\"\n";
    let n1 = config(
        0,
        0,
        "preempt = true\ntrack = [{ tracker = \"uplink\" }]",
        trackers,
    );
    start_with(&mut lab, 0, &n1);
    start_with(&mut lab, 1, &config(1, 100, "preempt = true", ""));
    lab.expect_roles(&["MASTER", "BACKUP"]);
    moves_and_back(
        &lab,
        &|lab| {
            lab.nodes[0].ok("ip link set eth1 down").unwrap();
        },
        &|lab| {
            lab.nodes[0].ok("ip link set eth1 up").unwrap();
        },
        true,
    );
}

/// A file tracker "maint" reading `maint` in the lab's directory, which holds 0: the file
/// and the tracker's configuration.
fn maint_tracker(lab: &Lab) -> (std::path::PathBuf, String) {
    let maint = lab.dir().join("maint");
    std::fs::write(&maint, "0\n").unwrap();
    let tracker = format!(
        "[[tracker]]\nname = \"maint\"\ntype = \"file\"\npath = \"{}\"\n",
        maint.display()
    );
    (maint, tracker)
}

#[test]
fn demotion_reaches_ucarp_as_advskew_and_vipd_as_the_demote_byte() {
    // Mixed group: vipd (advskew 0) demoted by 200 advertises advskew 200; ucarp (advskew
    // 100, -P) preempts it.
    let mut lab = Lab::new("trkmixed", 2).unwrap();
    lab.as_user = true;
    let (maint, trackers) = maint_tracker(&lab);
    let n1 = config(
        0,
        0,
        "track = [{ tracker = \"maint\", weight = 200 }]",
        &trackers,
    );
    start_with(&mut lab, 0, &n1);
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let (_, events) = lab.start_ucarp(1, 1, 100, "secret", &["-P"]).unwrap();
    std::thread::sleep(2 * SEC);
    assert!(vipd_tests::read_lines(&events).iter().all(|l| l != "up"));
    std::fs::write(&maint, "1\n").unwrap();
    assert!(
        Lab::wait_for(5 * SEC, || vipd_tests::read_lines(&events)
            .iter()
            .any(|l| l == "up")),
        "ucarp never took over: {}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(0, 1, "BACKUP", 3 * SEC),
        "{}",
        lab.log_text(0)
    );
    drop(lab);

    // vipd-only group with the demote byte: the backup takes over without preemption.
    let mut lab = Lab::new("trkdemote", 2).unwrap();
    lab.as_user = true;
    let (maint, trackers) = maint_tracker(&lab);
    let n1 = config(
        0,
        0,
        "demote_mode = \"demote\"\ntrack = [{ tracker = \"maint\", weight = 1 }]",
        &trackers,
    );
    start_with(&mut lab, 0, &n1);
    start_with(&mut lab, 1, &config(1, 100, "demote_mode = \"demote\"", ""));
    lab.expect_roles(&["MASTER", "BACKUP"]);
    std::fs::write(&maint, "1\n").unwrap();
    assert!(
        lab.wait_state(1, 1, "MASTER", 3 * SEC),
        "{}",
        lab.log_text(1)
    );
    assert!(lab.wait_state(0, 1, "BACKUP", 2 * SEC));
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[1].mac()]);
}

#[test]
fn a_sync_group_moves_together() {
    let mut lab = Lab::new("trksync", 2).unwrap();
    lab.as_user = true;
    let vip2 = vipd_tests::VIP2;
    let flag = lab.dir().join("broken");
    let script = lab.dir().join("check.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntest ! -e {}\n", flag.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (i, skew) in [(0usize, 0u8), (1, 100)] {
        let track = if i == 0 {
            "track = [{ tracker = \"check\" }]"
        } else {
            ""
        };
        let mut text = config(i, skew, &format!("sync_group = \"edge\"\n{track}"), "");
        text.push_str(&format!(
            "[[group]]\ninterface = \"eth0\"\nvhid = 2\nvips = [\"{vip2}/24\"]\n\
             srcip = \"{}\"\npassword = \"secret\"\nadvskew = {skew}\nsync_group = \"edge\"\n",
            node_addr(i + 1)
        ));
        if i == 0 {
            text.push_str(&format!(
                "[[tracker]]\nname = \"check\"\ntype = \"script\"\ncommand = \"{}\"\n\
                 interval_ms = {}\ntimeout_ms = {}\n",
                script.display(),
                100 * vipd_tests::slowdown(),
                90 * vipd_tests::slowdown()
            ));
        }
        start_with(&mut lab, i, &text);
    }
    lab.expect_roles(&["MASTER", "BACKUP"]);
    assert!(
        lab.wait_state(0, 2, "MASTER", 2 * SEC),
        "{}",
        lab.log_text(0)
    );
    // Group 1's service fails on node 1: both groups go to FAULT there, node 2 takes both.
    std::fs::write(&flag, "").unwrap();
    for vhid in [1, 2] {
        assert!(
            lab.wait_state(1, vhid, "MASTER", 3 * SEC),
            "{}",
            lab.log_text(0)
        );
        assert_eq!(lab.state(0, vhid), "FAULT");
    }
    for vip in [VIP, vip2] {
        assert_eq!(lab.arp_owners(vip, 2), vec![lab.nodes[1].mac()], "{vip}");
    }
    // Repaired: both leave FAULT through BACKUP and stay there (no preemption), together.
    std::fs::remove_file(&flag).unwrap();
    for vhid in [1, 2] {
        assert!(
            lab.wait_state(0, vhid, "BACKUP", 3 * SEC),
            "{}",
            lab.log_text(0)
        );
    }
    std::thread::sleep(4 * SEC);
    for vhid in [1, 2] {
        assert_eq!(lab.state(1, vhid), "MASTER", "no ping-pong");
    }
}
