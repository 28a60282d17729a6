use super::*;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// A socket path of its own, removed when dropped.
struct Sock(PathBuf);

impl Sock {
    fn new() -> Sock {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        Sock(std::env::temp_dir().join(format!(
            "vipd-control-{}-{}.sock",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn group() -> GroupStatus {
    GroupStatus {
        interface: "eth0".into(),
        vhid: 7,
        vips: vec!["10.0.0.100".into()],
        peers: Vec::new(),
        state: "MASTER".into(),
        since_secs: 1.5,
        master: Some("10.0.0.1".into()),
        advbase: 1,
        advskew: 0,
        demoted: false,
        last_advert_ms: None,
        transitions: 1,
        adverts_sent: 3,
        worst_advert_delay_us: 120,
        adverts_received: 0,
        rejected: vec![],
        last_owned_at_unix_us: Some(1_700_000_000_000_000),
        last_own_flip_us: Some(12.5),
        last_demote_at_unix_us: None,
        demotion: 0,
        failing: Vec::new(),
        draining: None,
        forwarding: None,
    }
}

fn status() -> Status {
    Status {
        schema: crate::ops::control::SCHEMA_VERSION,
        pid: 42,
        groups: vec![group()],
        xdp: vec![],
        unknown_group: 0,
        control: ControlStats::default(),
        interfaces: vec![InterfaceStatus {
            name: "eth0".into(),
            ifindex: 2,
            mode: "tc".into(),
            adopted: false,
        }],
        trackers: Vec::new(),
        forwarding: Vec::new(),
    }
}

/// Plays the daemon: answers every request until the server goes away.
fn answer_all(mut rx: mpsc::Receiver<Pending>) {
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let reply = match p.request {
                Request::Status => Reply::Status(status()),
                _ => Reply::Ok { changed: vec![7] },
            };
            let _ = p.reply.send(reply);
        }
    });
}

/// A server on a fresh socket.
async fn server(limits: Limits) -> (Sock, mpsc::Receiver<Pending>, ServerStats) {
    let sock = Sock::new();
    let listener = listen(&sock.0).await.unwrap();
    let (rx, stats) = serve(listener, limits);
    (sock, rx, stats)
}

/// Sends `bytes` on a fresh connection and reads the reply line.
async fn raw(path: &Path, bytes: &[u8]) -> Reply {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_reply(&mut stream).await
}

async fn read_reply(stream: &mut UnixStream) -> Reply {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await.unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn error_text(reply: Reply) -> String {
    match reply {
        Reply::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn root_and_own_user_are_allowed() {
    assert!(allowed(0, 0));
    assert!(allowed(0, 1000));
    assert!(allowed(1000, 1000));
    assert!(!allowed(1000, 0));
    assert!(!allowed(1001, 1000));
    assert!(!allowed(65534, 1000));
}

#[tokio::test]
async fn requests_reach_the_daemon_and_replies_the_client() {
    let (sock, rx, stats) = server(Limits::default()).await;
    answer_all(rx);
    let Reply::Status(s) = call(&sock.0, &Request::Status).await.unwrap() else {
        panic!("not a status")
    };
    assert_eq!(s.pid, 42);
    assert_eq!(s.groups[0].last_own_flip_us, Some(12.5));
    let reply = call(
        &sock.0,
        &Request::Demote {
            target: Target::Vhid(7),
            persist: false,
        },
    )
    .await
    .unwrap();
    assert!(matches!(reply, Reply::Ok { changed } if changed == [7]));
    assert_eq!(stats.snapshot(), ControlStats::default());
}

#[tokio::test]
async fn an_idle_client_does_not_delay_another() {
    let limits = Limits {
        read_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let (sock, rx, _stats) = server(limits).await;
    answer_all(rx);
    let mut idle = UnixStream::connect(&sock.0).await.unwrap();
    let start = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(5), call(&sock.0, &Request::Status))
        .await
        .expect("the second client is answered while the first sends nothing")
        .unwrap();
    assert!(matches!(reply, Reply::Status(_)));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The idle client is still connected and unanswered.
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(50), idle.read(&mut byte))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_is_dropped_after_the_read_timeout() {
    let (sock, rx, stats) = server(Limits::default()).await;
    answer_all(rx);
    let mut idle = UnixStream::connect(&sock.0).await.unwrap();
    let start = tokio::time::Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut idle))
        .await
        .expect("the server answers an idle client");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(error_text(reply).contains("no complete request within 2.0s"));
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).await.unwrap(), 0, "then closed");
    assert_eq!(
        stats.snapshot(),
        ControlStats {
            timeout: 1,
            ..ControlStats::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_trickling_its_request_is_dropped_too() {
    let (sock, rx, stats) = server(Limits::default()).await;
    answer_all(rx);
    let mut slow = UnixStream::connect(&sock.0).await.unwrap();
    let writer = async {
        for b in br#"{"cmd":"status"}"# {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
    let reply = read_reply(&mut slow).await;
    assert!(error_text(reply).contains("no complete request"));
    assert_eq!(stats.snapshot().timeout, 1);
}

#[tokio::test]
async fn an_oversize_request_is_refused_and_counted() {
    let limits = Limits {
        max_request: 1024,
        ..Limits::default()
    };
    let (sock, mut rx, stats) = server(limits).await;
    let stream = UnixStream::connect(&sock.0).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // Far more than the cap and than the socket buffers: the server must stop reading.
    tokio::spawn(async move {
        let _ = write.write_all(&vec![b' '; 4 << 20]).await;
    });
    let mut line = String::new();
    BufReader::new(&mut read)
        .read_line(&mut line)
        .await
        .unwrap();
    let reply: Reply = serde_json::from_str(&line).unwrap();
    assert_eq!(error_text(reply), "request larger than 1024 bytes");
    assert_eq!(
        stats.snapshot(),
        ControlStats {
            too_large: 1,
            ..ControlStats::default()
        }
    );
    assert!(rx.try_recv().is_err(), "nothing reached the daemon");
}

#[tokio::test]
async fn the_size_cap_counts_the_newline() {
    let line = b"{\"cmd\":\"status\"}\n";
    for (max, fits) in [(line.len(), true), (line.len() - 1, false)] {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(line).await.unwrap();
        let got = read_line(&mut b, max).await.unwrap();
        if fits {
            assert_eq!(got, Line::Complete(line.to_vec()));
        } else {
            assert_eq!(got, Line::TooLarge);
        }
    }
    // A request without newline, ended by closing, is whole.
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.write_all(b"{\"cmd\":\"status\"}").await.unwrap();
    drop(a);
    assert_eq!(
        read_line(&mut b, 1024).await.unwrap(),
        Line::Complete(b"{\"cmd\":\"status\"}".to_vec())
    );
    let (a, mut b) = UnixStream::pair().unwrap();
    drop(a);
    assert_eq!(read_line(&mut b, 1024).await.unwrap(), Line::Empty);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_and_counted() {
    let limits = Limits {
        read_timeout: Duration::from_secs(60),
        max_connections: 2,
        ..Limits::default()
    };
    let (sock, rx, stats) = server(limits).await;
    answer_all(rx);
    let first = UnixStream::connect(&sock.0).await.unwrap();
    let _second = UnixStream::connect(&sock.0).await.unwrap();
    let start = Instant::now();
    match call(&sock.0, &Request::Status).await {
        Err(ControlError::Refused(m)) => assert!(m.contains("too many"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1), "refused at once");
    // An idle connection that is not even read from is refused at once too.
    let mut third = UnixStream::connect(&sock.0).await.unwrap();
    assert!(error_text(read_reply(&mut third).await).contains("too many"));
    assert_eq!(
        stats.snapshot(),
        ControlStats {
            too_many_connections: 2,
            ..ControlStats::default()
        }
    );
    // A slot frees when a client goes away.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match call(&sock.0, &Request::Status).await {
            Ok(Reply::Status(_)) => break,
            Err(ControlError::Refused(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_disallowed_peer_is_refused_and_counted() {
    let sock = Sock::new();
    let listener = listen(&sock.0).await.unwrap();
    let (mut rx, stats) = spawn_server(listener, Limits::default(), 0, |_, _| false);
    match call(&sock.0, &Request::Status).await {
        Err(ControlError::Refused(m)) => assert_eq!(m, "permission denied"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        stats.snapshot(),
        ControlStats {
            bad_credentials: 1,
            ..ControlStats::default()
        }
    );
    assert!(rx.try_recv().is_err(), "nothing reached the daemon");
}

#[tokio::test]
async fn the_peer_uid_is_what_the_rule_sees() {
    fn only_own(peer: u32, own: u32) -> bool {
        peer == own
    }
    let me = nix::unistd::geteuid().as_raw();
    for (own, ok) in [(me, true), (me.wrapping_add(1), false)] {
        let sock = Sock::new();
        let listener = listen(&sock.0).await.unwrap();
        let (rx, _stats) = spawn_server(listener, Limits::default(), own, only_own);
        answer_all(rx);
        assert_eq!(call(&sock.0, &Request::Status).await.is_ok(), ok);
    }
}

#[tokio::test]
async fn a_bad_request_is_refused_and_counted() {
    let (sock, mut rx, stats) = server(Limits::default()).await;
    let reply = raw(&sock.0, b"{\"cmd\":\"reboot\"}\n").await;
    assert!(error_text(reply).starts_with("bad request:"));
    let reply = raw(&sock.0, b"\xff\xfe\n").await;
    assert!(error_text(reply).starts_with("bad request:"));
    assert_eq!(
        stats.snapshot(),
        ControlStats {
            bad_request: 2,
            ..ControlStats::default()
        }
    );
    assert!(rx.try_recv().is_err());
    // A connection closed without a request (a check that a daemon listens) is no error.
    answer_all(rx);
    drop(UnixStream::connect(&sock.0).await.unwrap());
    call(&sock.0, &Request::Status).await.unwrap();
    assert_eq!(stats.snapshot().bad_request, 2);
}

#[tokio::test]
async fn an_unanswered_request_gets_an_error() {
    let (sock, mut rx, _stats) = server(Limits::default()).await;
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            drop(p.reply);
        }
    });
    match call(&sock.0, &Request::Status).await {
        Err(ControlError::Refused(m)) => assert_eq!(m, "vipd did not answer the request"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_receiver_stops_the_server() {
    let (sock, rx, _stats) = server(Limits::default()).await;
    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(5);
    while UnixStream::connect(&sock.0).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn replies_without_the_newer_fields_parse() {
    let mut old = serde_json::to_value(Reply::Status(status())).unwrap();
    let s = old["status"].as_object_mut().unwrap();
    s.remove("control");
    s.remove("interfaces");
    let g = s["groups"][0].as_object_mut().unwrap();
    for f in [
        "last_owned_at_unix_us",
        "last_own_flip_us",
        "last_demote_at_unix_us",
    ] {
        g.remove(f);
    }
    let Reply::Status(s) = serde_json::from_value(old).unwrap() else {
        panic!()
    };
    assert_eq!(s.control, ControlStats::default());
    assert_eq!(s.groups[0].last_owned_at_unix_us, None);
    assert_eq!(s.groups[0].last_own_flip_us, None);
    assert_eq!(s.groups[0].last_demote_at_unix_us, None);
}

#[test]
fn render_shows_ownership_history_and_refusals() {
    let mut s = status();
    let text = render(&s);
    assert!(text.contains("took the VIPs"), "{text}");
    assert!(text.contains("ownership write 12.5us"), "{text}");
    assert!(!text.contains("demoted "), "{text}");
    assert!(!text.contains("control connections refused"), "{text}");
    s.groups[0].last_demote_at_unix_us = Some(1);
    s.control.timeout = 3;
    s.control.bad_credentials = 1;
    let text = render(&s);
    assert!(text.contains("demoted "), "{text}");
    assert!(
        text.contains("control connections refused: timeout=3 bad_credentials=1"),
        "{text}"
    );
    assert_eq!(ago(1_000_000, 3_500_000), "2.5s");
    assert_eq!(ago(5, 1), "0.0s");
}

#[test]
fn render_shows_draining_forwarding_and_forwarded_segments() {
    let mut s = status();
    let text = render(&s);
    assert!(
        !text.contains("draining") && !text.contains("forward"),
        "{text}"
    );
    s.groups[0].state = "DRAINING".into();
    s.groups[0].draining = Some(DrainStatus {
        connections: Some(3),
        remaining_secs: 41.5,
    });
    s.groups[0].forwarding = Some(ForwardStatus {
        to: "10.0.0.1".into(),
        mac: Some("02:00:00:00:00:01".into()),
        remaining_secs: 12.0,
    });
    s.forwarding = vec![("forwarded".into(), 17), ("syn".into(), 0)];
    let text = render(&s);
    assert!(text.contains("DRAINING"), "{text}");
    assert!(
        text.contains("draining: connections left 3, 41.5s to the limit"),
        "{text}"
    );
    assert!(
        text.contains("to 10.0.0.1 (02:00:00:00:00:01), 12.0s left"),
        "{text}"
    );
    assert!(
        text.contains("TCP segments for VIPs being forwarded: forwarded=17\n"),
        "{text}"
    );
}
