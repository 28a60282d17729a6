use super::*;
use crate::testing::{Scratch, chmod};

fn run(vhid: u8, vip: &str, script: &str) -> ScriptRun {
    ScriptRun {
        vhid,
        script: PathBuf::from(script),
        args: vec!["eth0".into(), vip.into()],
        timeout: Duration::from_secs(1),
        user: None,
    }
}

fn order(q: &mut ScriptQueue) -> Vec<(u8, String, String)> {
    std::iter::from_fn(|| q.pop())
        .map(|r| (r.vhid, r.args[1].clone(), r.script.display().to_string()))
        .collect()
}

fn t(vhid: u8, vip: &str, script: &str) -> (u8, String, String) {
    (vhid, vip.into(), script.into())
}

#[test]
fn runs_come_out_in_order() {
    let mut q = ScriptQueue::new(8);
    for (v, vip) in [(1, "10.0.0.1"), (2, "10.0.0.2"), (1, "10.0.0.3")] {
        assert!(matches!(q.push(run(v, vip, "up")), Pushed::Queued));
    }
    assert_eq!(q.len(), 3);
    assert_eq!(
        order(&mut q),
        [
            t(1, "10.0.0.1", "up"),
            t(2, "10.0.0.2", "up"),
            t(1, "10.0.0.3", "up")
        ]
    );
    assert!(q.is_empty());
}

#[test]
fn a_later_transition_replaces_the_waiting_run_of_the_same_vip() {
    let mut q = ScriptQueue::new(8);
    q.push(run(1, "10.0.0.1", "up"));
    q.push(run(1, "10.0.0.2", "up"));
    q.push(run(2, "10.0.0.1", "up"));
    let Pushed::Replaced(old) = q.push(run(1, "10.0.0.1", "down")) else {
        panic!("same group, same VIP: replaced");
    };
    assert_eq!(old.script, PathBuf::from("up"));
    assert_eq!(q.replaced, 1);
    assert_eq!(
        order(&mut q),
        [
            t(1, "10.0.0.2", "up"),
            t(2, "10.0.0.1", "up"),
            t(1, "10.0.0.1", "down")
        ]
    );
}

#[test]
fn the_same_vhid_on_another_interface_is_another_group() {
    let mut q = ScriptQueue::new(8);
    q.push(run(1, "10.0.0.1", "up"));
    let mut other = run(1, "10.0.0.1", "down");
    other.args[0] = "eth1".into();
    assert!(matches!(q.push(other), Pushed::Queued));
    assert_eq!(q.len(), 2);
}

#[test]
fn a_full_queue_drops_its_oldest_run_and_counts_it() {
    let mut q = ScriptQueue::new(3);
    for v in 1..=3 {
        q.push(run(v, "10.0.0.1", "up"));
    }
    let Pushed::DroppedOldest(old) = q.push(run(4, "10.0.0.1", "up")) else {
        panic!("full: the oldest goes");
    };
    assert_eq!(old.vhid, 1);
    q.push(run(5, "10.0.0.1", "up"));
    assert_eq!((q.dropped, q.len()), (2, 3));
    // Replacing never drops: the queue does not grow.
    assert!(matches!(
        q.push(run(4, "10.0.0.1", "down")),
        Pushed::Replaced(_)
    ));
    assert_eq!((q.dropped, q.len()), (2, 3));
    assert_eq!(
        order(&mut q),
        [
            t(3, "10.0.0.1", "up"),
            t(5, "10.0.0.1", "up"),
            t(4, "10.0.0.1", "down")
        ]
    );
}

/// A script that exits 0, with `mode`, in `s`.
fn script(s: &Scratch, name: &str, mode: u32) -> PathBuf {
    s.file(name, "#!/bin/sh\nexit 0\n", mode)
}

#[test]
fn a_script_only_its_owners_can_change_is_accepted() {
    let s = Scratch::new("ok");
    let p = script(&s, "up.sh", 0o755);
    check_script(&p, None).unwrap();
    // `..` is taken after the directory before it, as the kernel takes it.
    assert!(check_script(&s.0.join("sub/../up.sh"), None).is_err());
    std::fs::create_dir(s.0.join("sub")).unwrap();
    chmod(&s.0.join("sub"), 0o755);
    check_script(&s.0.join("sub/../up.sh"), None).unwrap();
    check_script(Path::new("/bin/sh"), None).unwrap();
}

#[test]
fn a_script_writable_by_group_or_others_is_refused() {
    let s = Scratch::new("mode");
    for mode in [0o777, 0o775, 0o757] {
        let p = script(&s, &format!("up{mode:o}.sh"), mode);
        let err = check_script(&p, None).unwrap_err();
        assert!(
            err.contains(&p.display().to_string()) && err.contains("writable"),
            "{err}"
        );
    }
}

#[test]
fn a_directory_above_writable_by_others_is_refused_unless_sticky() {
    let s = Scratch::new("dir");
    let open = s.0.join("open");
    std::fs::create_dir(&open).unwrap();
    let p = open.join("up.sh");
    std::fs::write(&p, "#!/bin/sh\n").unwrap();
    chmod(&p, 0o755);
    chmod(&open, 0o777);
    let err = check_script(&p, None).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{} (a directory above {})",
            open.display(),
            p.display()
        )),
        "{err}"
    );
    chmod(&open, 0o1777);
    check_script(&p, None).unwrap();
    chmod(&open, 0o775);
    assert!(
        check_script(&p, None)
            .unwrap_err()
            .contains("writable by group")
    );
    // The check covers every directory, not only the script's own.
    chmod(&open, 0o755);
    chmod(&s.0, 0o777);
    let err = check_script(&p, None).unwrap_err();
    assert!(err.starts_with(&s.0.display().to_string()), "{err}");
    chmod(&s.0, 0o755);
}

#[test]
fn a_symbolic_link_is_checked_along_both_paths() {
    let s = Scratch::new("link");
    let real = script(&s, "real.sh", 0o755);
    let open = s.0.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    // A safe link to a script in an unsafe directory.
    let hidden = open.join("up.sh");
    std::fs::write(&hidden, "#!/bin/sh\n").unwrap();
    chmod(&hidden, 0o755);
    let link = s.0.join("up.sh");
    std::os::unix::fs::symlink(&hidden, &link).unwrap();
    let err = check_script(&link, None).unwrap_err();
    assert!(err.starts_with(&open.display().to_string()), "{err}");
    // A link in an unsafe directory to a safe script.
    let link2 = open.join("to-real.sh");
    std::os::unix::fs::symlink(&real, &link2).unwrap();
    let err = check_script(&link2, None).unwrap_err();
    assert!(err.starts_with(&open.display().to_string()), "{err}");
    // Relative links, through a safe directory, are followed.
    chmod(&open, 0o755);
    let rel = s.0.join("rel.sh");
    std::os::unix::fs::symlink("open/../real.sh", &rel).unwrap();
    check_script(&rel, None).unwrap();
    // A loop is an error, not a hang.
    let a = s.0.join("a");
    std::os::unix::fs::symlink("b", &a).unwrap();
    std::os::unix::fs::symlink("a", s.0.join("b")).unwrap();
    assert!(check_script(&a, None).unwrap_err().contains("too many"));
}

#[test]
fn a_script_owned_by_another_user_is_refused_unless_it_is_the_script_user() {
    let s = Scratch::new("owner");
    let p = script(&s, "up.sh", 0o755);
    let other = 4242;
    std::os::unix::fs::chown(&p, Some(other), None).unwrap_or_else(|e| {
        panic!("chown needs root (the tests run as root): {e}");
    });
    let err = check_script(&p, None).unwrap_err();
    assert!(
        err.contains(&format!("{} is owned by uid {other}", p.display())),
        "{err}"
    );
    let user = ScriptUser {
        name: "someone".into(),
        uid: other,
        gid: other,
        groups: vec![],
    };
    check_script(&p, Some(&user)).unwrap();
    // Nor may a directory above belong to someone else.
    std::os::unix::fs::chown(&p, Some(0), None).unwrap();
    std::os::unix::fs::chown(&s.0, Some(other), None).unwrap();
    let err = check_script(&p, None).unwrap_err();
    assert!(err.contains("(a directory above"), "{err}");
    check_script(&p, Some(&user)).unwrap();
}

#[test]
fn missing_and_odd_paths_are_errors() {
    let s = Scratch::new("odd");
    assert!(check_script(&s.0.join("nope.sh"), None).is_err());
    let err = check_script(&s.0, None).unwrap_err();
    assert!(err.contains("not a regular file"), "{err}");
    let f = script(&s, "f", 0o755);
    assert!(
        check_script(&f.join("x"), None)
            .unwrap_err()
            .contains("not a directory")
    );
}

#[test]
fn users_are_resolved_with_their_groups() {
    let root = ScriptUser::lookup("root").unwrap();
    assert_eq!((root.uid, root.gid), (0, 0));
    assert!(root.groups.contains(&0));
    assert_eq!(ScriptUser::lookup("0").unwrap().name, "root");
    let err = ScriptUser::lookup("no-such-user-vipd").unwrap_err();
    assert_eq!(err, "no such user: \"no-such-user-vipd\"");
}

#[tokio::test(flavor = "current_thread")]
async fn a_timed_out_script_is_killed_with_what_it_started() {
    let s = Scratch::new("kill");
    let pids = s.0.join("pids");
    let p = s.0.join("slow.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nsleep 30 &\necho $$ $! > {}\nsleep 30\n",
            pids.display()
        ),
    )
    .unwrap();
    chmod(&p, 0o755);
    let started = std::time::Instant::now();
    execute(ScriptRun {
        vhid: 1,
        script: p,
        args: vec!["eth0".into(), "10.0.0.1".into()],
        timeout: Duration::from_millis(500),
        user: None,
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = std::fs::read_to_string(&pids).unwrap();
    let mut gone = false;
    for _ in 0..200 {
        // The background child is reaped by init once killed; signal 0 probes it.
        gone = text.split_whitespace().all(|pid| {
            let pid: i32 = pid.parse().unwrap();
            // SAFETY: signal 0 only checks that the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            !alive || is_zombie(pid)
        });
        if gone {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone, "processes of the script survived its timeout: {text}");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

#[tokio::test(flavor = "current_thread")]
async fn the_runner_runs_what_is_queued_then_stops() {
    let s = Scratch::new("runner");
    let out = s.0.join("out");
    let p = s.0.join("log.sh");
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", out.display()),
    )
    .unwrap();
    chmod(&p, 0o755);
    let runner = ScriptRunner::start();
    for vip in ["10.0.0.1", "10.0.0.2"] {
        let mut r = run(1, vip, "");
        r.script = p.clone();
        runner.queue(r);
    }
    runner.close().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "eth0 10.0.0.1\neth0 10.0.0.2\n"
    );
}
