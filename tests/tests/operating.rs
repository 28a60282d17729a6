//! Operating vipd: under systemd (Type=notify: readiness, the watchdog fed from the event
//! loop, the stop notice, through a NOTIFY_SOCKET the test listens on) and scraped by
//! Prometheus (the metrics pass `promtool check metrics` and follow a transition).
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use vipd_tests::{Lab, vipd_bin};

#[test]
fn readiness_watchdog_and_stop_reach_the_notify_socket() {
    let mut lab = Lab::new("sdnotify", 1).unwrap();
    let path = lab.dir().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // As systemd starts it: NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (its own pid).
    let flags = lab.ucarp_flags(0, 0, &[]).join(" ");
    let script = format!(
        "NOTIFY_SOCKET={} WATCHDOG_USEC=200000 WATCHDOG_PID=$$ exec {} {flags}",
        path.display(),
        vipd_bin().display()
    );
    let args = ["sh", "-c", script.as_str()];
    let host = lab.nodes[0].clone();
    let pid = lab.spawn(&host, &args, "n1.log").unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    let count = |seen: &[String], what: &str| seen.iter().filter(|m| m.contains(what)).count();
    let mut read_until =
        |seen: &mut Vec<String>, end: Instant, stop: &dyn Fn(&[String]) -> bool| {
            while Instant::now() < end && !stop(seen) {
                if let Ok(n) = sock.recv(&mut buf) {
                    seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        };
    // Ready once it runs (the program load takes seconds on an emulated CPU), then 3 s of
    // the watchdog.
    let ready = |seen: &[String]| count(seen, "READY=1") > 0;
    read_until(&mut seen, Instant::now() + Duration::from_secs(30), &ready);
    assert!(ready(&seen), "{seen:?}");
    seen.clear();
    read_until(&mut seen, Instant::now() + Duration::from_secs(3), &|_| {
        false
    });
    assert_eq!(count(&seen, "READY=1"), 0, "ready once: {seen:?}");
    // Every 100 ms for 3 s.
    assert!(count(&seen, "WATCHDOG=1") >= 15, "{seen:?}");
    // A service manager that does not read for a while (its queue fills) never stalls the
    // event loop: status is answered, the election goes on.
    std::thread::sleep(Duration::from_secs(2));
    let status = host.sh(&format!("timeout 5 {} status --json", vipd_bin().display()));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("\"MASTER\""),
        "{text}\n{}",
        std::fs::read_to_string(lab.dir().join("n1.log")).unwrap_or_default()
    );
    // It reads again, as systemd does, while vipd stops: a lone MASTER waits master-down
    // for a peer to take over, feeding the watchdog meanwhile.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return got,
                    Err(_) => {}
                }
            }
        })
    };
    // The backlog read, as a service manager that caught up.
    std::thread::sleep(Duration::from_millis(500));
    let exited = lab.signal(pid, libc::SIGTERM, Duration::from_secs(10));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let got = reader.join().unwrap();
    assert!(
        exited,
        "{}",
        std::fs::read_to_string(lab.dir().join("n1.log")).unwrap_or_default()
    );
    let stopping = got.iter().position(|m| m.contains("STOPPING=1"));
    let Some(stopping) = stopping else {
        panic!("{got:?}");
    };
    assert!(count(&got[stopping..], "WATCHDOG=1") >= 10, "{got:?}");
}

#[test]
fn metrics_pass_promtool_and_follow_a_transition() {
    let mut lab = Lab::new("metrics", 2).unwrap();
    lab.as_user = true;
    lab.start_node(0, 0, &["--metrics-listen", "127.0.0.1:9477"])
        .unwrap();
    lab.start_node(1, 100, &[]).unwrap();
    lab.expect_roles(&["MASTER", "BACKUP"]);
    let scrape = |lab: &Lab| {
        let text = lab.nodes[0]
            .ok("curl -sf http://127.0.0.1:9477/metrics")
            .unwrap();
        let file = lab.dir().join("metrics.txt");
        std::fs::write(&file, &text).unwrap();
        let check = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < {}", file.display()))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        text
    };
    let before = scrape(&lab);
    let master = "vipd_group_state{interface=\"eth0\",state=\"MASTER\",vhid=\"1\"}";
    assert!(before.contains(&format!("{master} 1")), "{before}");
    lab.vipd_ctl(0, &["demote", "--all"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)));
    let after = scrape(&lab);
    assert!(after.contains(&format!("{master} 0")), "{after}");
    let transitions = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("vipd_transitions_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    assert!(transitions(&after) > transitions(&before));
}

#[test]
fn a_demotion_survives_a_restart() {
    let mut lab = Lab::pair_as_user("demotesave");
    let restart = |lab: &mut Lab| {
        let pid = lab.status(0).unwrap().pid;
        assert!(lab.signal(pid, libc::SIGTERM, Duration::from_secs(10)));
        lab.start_node(0, 0, &["-P"]).unwrap();
        // Up again (BACKUP, or already MASTER when it preempts at once).
        assert!(Lab::wait_for(Duration::from_secs(5), || {
            matches!(lab.state(0, 1).as_str(), "BACKUP" | "MASTER")
        }));
    };
    // A plain demotion lasts as long as the daemon: restarted, the preemptive and better
    // node takes the VIP back.
    lab.vipd_ctl(0, &["demote", "1"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)));
    restart(&mut lab);
    assert!(
        lab.wait_state(0, 1, "MASTER", Duration::from_secs(8)),
        "{}",
        lab.log_text(0)
    );
    // `--persist` is maintenance: it survives the restart until `vipd promote`.
    lab.vipd_ctl(0, &["demote", "1", "--persist"]).unwrap();
    assert!(lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)));
    restart(&mut lab);
    // Preemptive and better, it would take over within an interval: demoted, it stays.
    std::thread::sleep(Duration::from_secs(4));
    let s = lab.status(0).unwrap();
    assert!(s.groups[0].demoted, "{}", lab.log_text(0));
    assert_eq!(lab.state(0, 1), "BACKUP");
    assert_eq!(lab.state(1, 1), "MASTER");
    lab.vipd_ctl(0, &["promote", "1"]).unwrap();
    assert!(lab.wait_state(0, 1, "MASTER", Duration::from_secs(5)));
}
