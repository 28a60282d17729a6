//! vipd under systemd (Type=notify): readiness, the watchdog fed from the event loop, and
//! the stop notice, through a NOTIFY_SOCKET the test listens on.
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
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let count = |what: &str| seen.iter().filter(|m| m.contains(what)).count();
    assert_eq!(count("READY=1"), 1, "{seen:?}");
    // Every 100 ms for 3 s, less the start-up.
    assert!(count("WATCHDOG=1") >= 15, "{seen:?}");
    assert!(lab.signal(pid, libc::SIGTERM, Duration::from_secs(5)));
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    assert!(stopping, "{seen:?}");
}
