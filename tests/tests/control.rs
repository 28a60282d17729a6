//! The control socket stays off the daemon's critical path: clients that connect and send
//! nothing neither delay advertisements (no takeover by the BACKUP) nor `vipd status`.
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use vipd::ops::control::{Limits, Status};
use vipd_tests::{Lab, vipd_bin};

const SEC: Duration = Duration::from_secs(1);

/// master-down of the BACKUP below: 3 × advbase 1 s + advskew 100/256 s.
const MASTER_DOWN: Duration = Duration::from_micros(3_000_000 + 100 * 1_000_000 / 256);

/// How fast `vipd status` must answer, process start-up included.
const PROMPT: Duration = SEC;

/// Node 1 MASTER (advskew 0), node 2 BACKUP (advskew 100).
fn pair(tag: &str) -> Lab {
    let mut lab = Lab::new(tag, 2).unwrap();
    lab.start_node(0, 0, &[]).unwrap();
    lab.start_node(1, 100, &[]).unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "node 1 never became MASTER:\n{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(1, 1, "BACKUP", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    lab
}

/// What `vipd status` did.
#[derive(Debug)]
enum Answer {
    Status(Box<Status>),
    /// It exited with an error: the daemon's message.
    Refused(String),
    /// No answer within the limit: the command was killed.
    Hung,
}

/// Runs `vipd status --json` against node `i`, killed after `limit`; returns its answer and
/// how long it took.
fn timed_status(lab: &Lab, i: usize, limit: Duration) -> (Answer, Duration) {
    let start = Instant::now();
    let mut child = lab.nodes[i]
        .cmd(vipd_bin())
        .args(["status", "--json", "--control-socket"])
        .arg(lab.socket(i))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            // `ip netns exec` execs vipd: this kills the client itself.
            let _ = child.kill();
            let _ = child.wait();
            return (Answer::Hung, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = start.elapsed();
    let out = child.wait_with_output().unwrap();
    let answer = if out.status.success() {
        Answer::Status(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Answer::Refused(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    };
    (answer, took)
}

/// Node `i`'s status, which must come promptly.
fn prompt_status(lab: &Lab, i: usize) -> Status {
    match timed_status(lab, i, 5 * SEC) {
        (Answer::Status(s), took) => {
            assert!(took < PROMPT, "vipd status on node {} took {took:?}", i + 1);
            *s
        }
        (other, took) => panic!(
            "vipd status on node {}: {other:?} after {took:?}\n{}",
            i + 1,
            lab.log_text(i)
        ),
    }
}

/// The one line a connection received before being closed, waiting at most `wait`.
fn reply_of(conn: &UnixStream, wait: Duration) -> String {
    conn.set_read_timeout(Some(wait)).unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("the daemon answers and closes an idle connection");
    let mut rest = String::new();
    assert_eq!(
        reader.read_line(&mut rest).unwrap_or(0),
        0,
        "then closes it: {rest:?}"
    );
    line
}

fn group(s: &Status) -> &vipd::ops::control::GroupStatus {
    s.groups.iter().find(|g| g.vhid == 1).expect("group 1")
}

#[test]
fn control_idle_clients_do_not_stall_the_daemon() {
    let lab = pair("ctlidle");
    let before = [
        group(&prompt_status(&lab, 0)).transitions,
        group(&prompt_status(&lab, 1)).transitions,
    ];
    // One client connects and says nothing for longer than three master-downs; more keep
    // arriving all along, so that some idle connection is open at every moment.
    let first = UnixStream::connect(lab.socket(0)).unwrap();
    let mut idle = Vec::new();
    let window = 3 * MASTER_DOWN + SEC;
    let start = Instant::now();
    let mut next_idle = start;
    let mut checks = 0;
    while start.elapsed() < window {
        if Instant::now() >= next_idle {
            idle.push(UnixStream::connect(lab.socket(0)).unwrap());
            next_idle += SEC / 2;
        }
        let s = prompt_status(&lab, 0);
        assert_eq!(group(&s).state, "MASTER", "at {:?}", start.elapsed());
        let s = prompt_status(&lab, 1);
        assert_eq!(group(&s).state, "BACKUP", "at {:?}", start.elapsed());
        checks += 1;
        std::thread::sleep(SEC / 5);
    }
    assert!(checks >= 10, "only {checks} status checks in {window:?}");

    // The daemon dropped the idle clients after its read timeout, with an error.
    let wait = Limits::default().read_timeout + 3 * SEC;
    for conn in std::iter::once(&first).chain(&idle) {
        let line = reply_of(conn, wait);
        assert!(line.contains("no complete request"), "{line}");
    }

    let master = prompt_status(&lab, 0);
    let backup = prompt_status(&lab, 1);
    assert_eq!(group(&master).state, "MASTER");
    assert_eq!(group(&backup).state, "BACKUP");
    assert_eq!(
        [group(&master).transitions, group(&backup).transitions],
        before,
        "no takeover happened"
    );
    // No advertisement was late by as much as its interval.
    let late = Duration::from_micros(group(&master).worst_advert_delay_us);
    assert!(late < SEC, "an advertisement was sent {late:?} late");
    let c = master.control;
    assert!(
        c.timeout > idle.len() as u64,
        "every idle client counted as a timeout: {c:?}"
    );
    assert_eq!((c.too_many_connections, c.bad_request), (0, 0), "{c:?}");
}

#[test]
fn control_forty_idle_connections_leave_status_answering() {
    let lab = pair("ctlforty");
    let before = [
        group(&prompt_status(&lab, 0)).transitions,
        group(&prompt_status(&lab, 1)).transitions,
    ];
    let limits = Limits::default();
    let conns: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(lab.socket(0)).unwrap())
        .collect();

    // While they hold every slot, `vipd status` is answered at once: refused for the
    // connection limit, or served if it found a slot.
    let (answer, took) = timed_status(&lab, 0, 5 * SEC);
    assert!(took < PROMPT, "vipd status took {took:?}: {answer:?}");
    match &answer {
        Answer::Status(s) => assert_eq!(group(s).state, "MASTER"),
        Answer::Refused(m) => assert!(m.contains("too many"), "{m}"),
        Answer::Hung => unreachable!(),
    }

    // Once the idle ones time out, it is served again.
    let deadline = Instant::now() + limits.read_timeout + 3 * SEC;
    let master = loop {
        match timed_status(&lab, 0, 5 * SEC) {
            (Answer::Status(s), took) => {
                assert!(took < PROMPT, "vipd status took {took:?}");
                break *s;
            }
            (Answer::Refused(m), took) if m.contains("too many") && Instant::now() < deadline => {
                assert!(took < PROMPT, "vipd status took {took:?}");
                std::thread::sleep(SEC / 10);
            }
            other => panic!("vipd status: {other:?}\n{}", lab.log_text(0)),
        }
    };
    assert_eq!(group(&master).state, "MASTER");

    // Each idle connection got an error: refused at once beyond the limit, or timed out.
    let (mut busy, mut timed_out) = (0u64, 0u64);
    for conn in &conns {
        let line = reply_of(conn, limits.read_timeout + 3 * SEC);
        if line.contains("too many") {
            busy += 1;
        } else if line.contains("no complete request") {
            timed_out += 1;
        } else {
            panic!("unexpected reply: {line}");
        }
    }
    let slots = limits.max_connections as u64;
    assert_eq!(busy + timed_out, 40);
    assert!(
        timed_out <= slots,
        "{timed_out} served at once, limit {slots}"
    );
    assert!(busy >= 40 - slots, "only {busy} refused for the limit");

    let master = prompt_status(&lab, 0);
    let backup = prompt_status(&lab, 1);
    let c = master.control;
    assert!(
        c.too_many_connections >= busy && c.timeout >= timed_out,
        "{c:?}"
    );
    assert_eq!(group(&master).state, "MASTER");
    assert_eq!(group(&backup).state, "BACKUP");
    assert_eq!(
        [group(&master).transitions, group(&backup).transitions],
        before,
        "no takeover happened"
    );
}
