use super::*;
use crate::testing::Scratch;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

#[test]
fn the_first_verdict_is_reported_at_once() {
    for first in [true, false] {
        let mut h = Hysteresis::new(3, 3);
        assert_eq!(h.state(), None);
        assert_eq!(h.observe(first), Some(first));
        assert_eq!(h.observe(first), None);
        assert_eq!(h.state(), Some(first));
    }
}

#[test]
fn changes_need_rise_or_fall_consecutive_observations() {
    let mut h = Hysteresis::new(2, 3);
    assert_eq!(h.observe(true), Some(true));
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(false), Some(false), "fall = 3");
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(true), None);
    assert_eq!(h.observe(true), Some(true), "rise = 2");
    // A success in between starts the count again.
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(true), None);
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(false), None);
    assert_eq!(h.observe(false), Some(false));
    assert_eq!(h.state(), Some(false));
}

#[test]
fn rise_and_fall_of_one_follow_every_observation() {
    let mut h = Hysteresis::new(1, 1);
    let seen: Vec<_> = [true, false, false, true, true, false]
        .into_iter()
        .map(|ok| h.observe(ok))
        .collect();
    assert_eq!(
        seen,
        [Some(true), Some(false), None, Some(true), None, Some(false)]
    );
    // Zero counts as one.
    assert_eq!(Hysteresis::new(0, 0), Hysteresis::new(1, 1));
}

#[test]
fn status_lines() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Ok(200));
    assert_eq!(
        parse_status_line(b"HTTP/1.0 503 Service Unavailable"),
        Ok(503)
    );
    assert_eq!(parse_status_line(b"HTTP/1.1 204"), Ok(204));
    assert_eq!(parse_status_line(b"HTTP/1.1 404 "), Ok(404));
    for bad in [
        &b""[..],
        b"HTTP/2 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 600 Odd",
        b"HTTP/1.1 099 Odd",
        b"HTTP/1.1  200 OK",
        b"SSH-2.0-OpenSSH_9.2",
        b"http/1.1 200 OK",
    ] {
        assert!(
            parse_status_line(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        status_line(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
        Some(&b"HTTP/1.1 200 OK"[..])
    );
    assert_eq!(
        status_line(b"HTTP/1.1 200 OK\nServer: x\n"),
        Some(&b"HTTP/1.1 200 OK"[..])
    );
    assert_eq!(status_line(b"HTTP/1.1 200 O"), None);
    assert_eq!(
        http_request("example.org", "/health?x=1"),
        "GET /health?x=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: vipd\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn file_values() {
    assert_eq!(parse_value(b"0"), Ok(0));
    assert_eq!(parse_value(b"5\n"), Ok(5));
    assert_eq!(parse_value(b"  -12 \r\n"), Ok(-12));
    assert_eq!(parse_value(b"+7"), Ok(7));
    assert_eq!(parse_value(b"9223372036854775807"), Ok(i64::MAX));
    assert_eq!(parse_value(b""), Err("empty".into()));
    assert_eq!(parse_value(b" \n"), Err("empty".into()));
    assert_eq!(parse_value(b"5 6"), Err("\"5 6\" is not an integer".into()));
    assert_eq!(parse_value(b"abc"), Err("\"abc\" is not an integer".into()));
    assert_eq!(parse_value(b"1.5"), Err("\"1.5\" is not an integer".into()));
    assert!(parse_value(b"9223372036854775808").is_err());
    assert_eq!(parse_value(&[0xff, 0xfe]), Err("not text".into()));
    let long = vec![b'1'; MAX_FILE_BYTES + 1];
    assert!(parse_value(&long).unwrap_err().starts_with("longer than"));
}

#[test]
fn proc_parsing() {
    assert_eq!(
        parse_stat("1234 (nginx: worker) S 1 1234 1234 0 -1"),
        Some(("nginx: worker", 'S'))
    );
    assert_eq!(parse_stat("7 (a) b) Z 1"), Some(("a) b", 'Z')));
    assert_eq!(parse_stat("garbage"), None);
    assert!(comm_matches("nginx", "nginx"));
    assert!(!comm_matches("nginx", "ngin"));
    assert!(comm_matches("very-long-daemo", "very-long-daemon-name"));
    assert!(!comm_matches("very-long-daemo", "very-long-daem"));
    assert_eq!(parse_pidfile("1234\n"), Some(1234));
    assert_eq!(parse_pidfile(" 42 extra"), Some(42));
    assert_eq!(parse_pidfile("0"), None);
    assert_eq!(parse_pidfile("-1"), None);
    assert_eq!(parse_pidfile(""), None);
    assert_eq!(parse_pidfile("abc"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn spawn_refuses_what_cannot_work() {
    {
        let tcp = |name: &str, interval: u64, timeout: u64| {
            TrackerConfig::new(
                name,
                TrackerKind::Tcp {
                    address: "127.0.0.1:1".parse().unwrap(),
                    interval: Duration::from_millis(interval),
                    timeout: Duration::from_millis(timeout),
                },
            )
        };
        let err = |c: Vec<TrackerConfig>| spawn(c).unwrap_err().to_string();
        assert_eq!(
            err(vec![tcp("a", 100, 50), tcp("a", 100, 50)]),
            "tracker a is defined twice"
        );
        assert_eq!(
            err(vec![tcp("a", 5, 5)]),
            "tracker a: interval 5 ms is below 10 ms"
        );
        assert!(err(vec![tcp("a", 100, 200)]).contains("at most the interval"));
        let mut c = tcp("a", 100, 50);
        c.fall = 0;
        assert!(err(vec![c]).contains("at least 1"));
        let mut c = TrackerConfig::new(
            "f",
            TrackerKind::File {
                path: "/nonexistent-vipd/x".into(),
            },
        );
        assert!(err(vec![c.clone()]).starts_with("tracker f: cannot watch /nonexistent-vipd"));
        c.rise = 2;
        assert!(err(vec![c]).contains("rise and fall must be 1"));
        let p = TrackerConfig::new(
            "p",
            TrackerKind::Process {
                name: Some("a".into()),
                cmdline: Some("b".into()),
                pidfile: None,
            },
        );
        assert!(err(vec![p]).contains("exactly one"));
    }
}

/// The next event, or a panic after `within`.
async fn next(rx: &mut mpsc::Receiver<TrackerEvent>, within: Duration) -> TrackerEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no tracker event in time")
        .expect("trackers ended")
}

/// No event for `quiet`.
async fn silent(rx: &mut mpsc::Receiver<TrackerEvent>, quiet: Duration) {
    if let Ok(ev) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected event {ev:?}");
    }
}

fn health(name: &str, healthy: bool) -> TrackerEvent {
    TrackerEvent::Health {
        name: name.into(),
        healthy,
    }
}

fn value(name: &str, value: i64) -> TrackerEvent {
    TrackerEvent::Value {
        name: name.into(),
        value,
    }
}

const SOON: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "current_thread")]
async fn tcp_tracker_goes_down_after_fall_failed_connects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let interval = Duration::from_millis(30);
    let mut rx = spawn(vec![TrackerConfig {
        fall: 3,
        ..TrackerConfig::new(
            "tcp",
            TrackerKind::Tcp {
                address,
                interval,
                timeout: Duration::from_millis(20),
            },
        )
    }])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("tcp", true));
    silent(&mut rx, interval * 3).await;
    let closed = Instant::now();
    server.abort();
    let _ = server.await;
    assert_eq!(next(&mut rx, SOON).await, health("tcp", false));
    // Three failed probes, about an interval apart (a tick may come up to 5 ms short
    // of one after a late one): two intervals, less that slack.
    let slack = Duration::from_millis(10);
    assert!(
        closed.elapsed() >= interval * 2 - slack,
        "{:?}",
        closed.elapsed()
    );
}

/// An HTTP server answering every request with `status`; the request lines go to the
/// returned receiver.
async fn http_server(status: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut chunk = [0u8; 256];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, rx)
}

fn http(name: &str, address: SocketAddr) -> TrackerConfig {
    TrackerConfig::new(
        name,
        TrackerKind::Http {
            address,
            host: "svc.example".into(),
            path: "/health".into(),
            expect_status: 200,
            interval: Duration::from_millis(30),
            timeout: Duration::from_millis(25),
        },
    )
}

#[tokio::test(flavor = "current_thread")]
async fn http_tracker_follows_the_status() {
    let (ok, mut requests) = http_server("200 OK").await;
    let (failing, _) = http_server("500 Internal Server Error").await;
    let mut rx = spawn(vec![http("ok", ok)]).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("ok", true));
    let req = requests.recv().await.unwrap();
    assert!(
        req.starts_with("GET /health HTTP/1.1\r\nHost: svc.example\r\n"),
        "{req}"
    );
    let mut rx = spawn(vec![http("failing", failing)]).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("failing", false));
    silent(&mut rx, Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn http_tracker_times_out_on_a_silent_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        }
    });
    let mut rx = spawn(vec![http("mute", address)]).unwrap();
    let started = Instant::now();
    assert_eq!(next(&mut rx, SOON).await, health("mute", false));
    assert!(started.elapsed() >= Duration::from_millis(25));
    server.abort();
    let (up, _) = http_server("200 OK").await;
    let mut rx = spawn(vec![TrackerConfig {
        rise: 2,
        fall: 2,
        ..http("up", up)
    }])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("up", true));
}

fn sh(name: &str, script: &str, timeout_ms: u64) -> TrackerConfig {
    TrackerConfig::new(
        name,
        TrackerKind::Script {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            interval: Duration::from_millis(timeout_ms.max(30)),
            timeout: Duration::from_millis(timeout_ms),
            user: None,
        },
    )
}

#[tokio::test(flavor = "current_thread")]
async fn script_tracker_follows_the_exit_status() {
    let mut rx = spawn(vec![sh("zero", "exit 0", 1000)]).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("zero", true));
    let mut rx = spawn(vec![sh("one", "exit 1", 1000)]).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("one", false));
    let mut rx = spawn(vec![TrackerConfig {
        name: "missing".into(),
        kind: TrackerKind::Script {
            command: "/nonexistent-vipd/check".into(),
            args: vec![],
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(50),
            user: None,
        },
        rise: 1,
        fall: 1,
    }])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("missing", false));
    // Runs as the script user.
    let s = Scratch::new("user");
    let out = s.0.join("uid");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    if let Ok(nobody) = ScriptUser::lookup("nobody") {
        let mut c = sh("user", &format!("id -u > {}", out.display()), 1000);
        if let TrackerKind::Script { user, .. } = &mut c.kind {
            *user = Some(nobody.clone());
        }
        let mut rx = spawn(vec![c]).unwrap();
        assert_eq!(next(&mut rx, SOON).await, health("user", true));
        let uid = std::fs::read_to_string(&out).unwrap();
        assert_eq!(uid.trim(), nobody.uid.to_string());
    }
}

fn is_gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s).map(|(_, st)| st == 'Z'))
            .unwrap_or(true)
}

#[tokio::test(flavor = "current_thread")]
async fn a_hanging_script_is_killed_with_its_process_group_at_its_timeout() {
    let s = Scratch::new("hang");
    let pids = s.0.join("pids");
    let script = format!(
        "sleep 30 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait",
        p = pids.display()
    );
    let started = Instant::now();
    let mut rx = spawn(vec![sh("hang", &script, 200)]).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("hang", false));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(rx);
    let text = std::fs::read_to_string(&pids).unwrap();
    let mut gone = false;
    for _ in 0..200 {
        gone = text.split_whitespace().all(|p| is_gone(p.parse().unwrap()));
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "processes of the script survived its timeout: {text}");
}

#[tokio::test(flavor = "current_thread")]
async fn file_tracker_reports_values_as_the_file_changes() {
    let s = Scratch::new("file");
    let path = s.0.join("weight");
    std::fs::write(&path, "0\n").unwrap();
    let mut rx = spawn(vec![TrackerConfig::new(
        "w",
        TrackerKind::File { path: path.clone() },
    )])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", 0));
    std::fs::write(&path, "5\n").unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", 5));
    // The same value again is no news.
    std::fs::write(&path, "5").unwrap();
    silent(&mut rx, Duration::from_millis(100)).await;
    std::fs::write(&path, "lots").unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("w", false));
    // Renamed into place.
    let tmp = s.0.join("weight.tmp");
    std::fs::write(&tmp, "7").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", 7));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("w", false));
    // Other files of the directory are not read.
    std::fs::write(s.0.join("other"), "1").unwrap();
    silent(&mut rx, Duration::from_millis(100)).await;
    std::fs::write(&path, "-3").unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", -3));
    // A FIFO in its place does not block the tracker.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("w", false));
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let tmp = s.0.join("weight.tmp");
    std::fs::write(&tmp, "2").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", 2));
}

#[tokio::test(flavor = "current_thread")]
async fn file_tracker_starts_down_on_a_missing_file() {
    let s = Scratch::new("missing");
    let path = s.0.join("weight");
    let mut rx = spawn(vec![TrackerConfig::new(
        "w",
        TrackerKind::File { path: path.clone() },
    )])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("w", false));
    std::fs::write(&path, "1").unwrap();
    assert_eq!(next(&mut rx, SOON).await, value("w", 1));
}

fn sleeper(seconds: &str) -> std::process::Child {
    std::process::Command::new("sleep")
        .arg(seconds)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn process_tracker_sees_an_exit_at_once_and_a_return_soon() {
    let s = Scratch::new("proc");
    let pidfile = s.0.join("sleep.pid");
    let mut child = sleeper("60");
    std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
    let mut rx = spawn(vec![TrackerConfig::new(
        "p",
        TrackerKind::Process {
            name: None,
            cmdline: None,
            pidfile: Some(pidfile.clone()),
        },
    )])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("p", true));
    silent(&mut rx, Duration::from_millis(300)).await;
    // Killed and not yet reaped: a zombie is not a live process.
    child.kill().unwrap();
    let killed = Instant::now();
    assert_eq!(next(&mut rx, SOON).await, health("p", false));
    assert!(
        killed.elapsed() < Duration::from_millis(150),
        "{:?}",
        killed.elapsed()
    );
    child.wait().unwrap();
    let mut again = sleeper("60");
    std::fs::write(&pidfile, format!("{}\n", again.id())).unwrap();
    assert_eq!(next(&mut rx, PROCESS_RESCAN * 5).await, health("p", true));
    again.kill().unwrap();
    again.wait().unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("p", false));
}

#[tokio::test(flavor = "current_thread")]
async fn process_tracker_by_command_line_and_name_with_fall() {
    let unique = format!("60.{}", std::process::id());
    let mut child = sleeper(&unique);
    // Until it has exec'd, the child still has the test's command line.
    let cmdline = format!("/proc/{}/cmdline", child.id());
    for _ in 0..300 {
        if std::fs::read(&cmdline).is_ok_and(|c| c.ends_with(format!("{unique}\0").as_bytes())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut rx = spawn(vec![
        TrackerConfig {
            fall: 2,
            ..TrackerConfig::new(
                "cmdline",
                TrackerKind::Process {
                    name: None,
                    cmdline: Some(format!("sleep {unique}")),
                    pidfile: None,
                },
            )
        },
        TrackerConfig::new(
            "name",
            TrackerKind::Process {
                name: Some("no-such-process-vipd".into()),
                cmdline: None,
                pidfile: None,
            },
        ),
    ])
    .unwrap();
    let mut first = vec![next(&mut rx, SOON).await, next(&mut rx, SOON).await];
    first.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(first, [health("cmdline", true), health("name", false)]);
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    // fall = 2: the exit and one scan later.
    assert_eq!(next(&mut rx, SOON).await, health("cmdline", false));
    let took = killed.elapsed();
    assert!(
        took >= PROCESS_RESCAN / 2 && took < PROCESS_RESCAN * 3,
        "{took:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn interface_tracker_reads_the_link_state() {
    let mut rx = spawn(vec![
        TrackerConfig::new(
            "lo",
            TrackerKind::Interface {
                interface: "lo".into(),
            },
        ),
        TrackerConfig::new(
            "none",
            TrackerKind::Interface {
                interface: "vipdnone0".into(),
            },
        ),
    ])
    .unwrap();
    assert_eq!(next(&mut rx, SOON).await, health("lo", true));
    assert_eq!(next(&mut rx, SOON).await, health("none", false));
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_script_is_killed_when_the_receiver_is_dropped() {
    let s = Scratch::new("drop");
    let pids = s.0.join("pids");
    let script = format!(
        "sleep 30 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait",
        p = pids.display()
    );
    let rx = spawn(vec![sh("long", &script, 10_000)]).unwrap();
    let mut text = String::new();
    for _ in 0..300 {
        if let Ok(t) = std::fs::read_to_string(&pids) {
            text = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!text.is_empty(), "the script did not start");
    drop(rx);
    let mut gone = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        gone = text.split_whitespace().all(|p| is_gone(p.parse().unwrap()));
        if gone {
            break;
        }
    }
    assert!(gone, "the script outlived its tracker: {text}");
}
