//! Hostile input and load against vipd started as users type it: a replayed advertisement
//! with better timing, a random-source flood, and the privileges the daemon keeps.
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vipd_tests::{Lab, VIP, in_netns, packets};

const SEC: Duration = Duration::from_secs(1);

fn status_line(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn the_daemon_keeps_only_what_it_needs_of_root() {
    let lab = Lab::pair_as_user("privs");
    let pid = lab.status(0).unwrap().pid;
    assert_eq!(status_line(pid, "NoNewPrivs:"), "1");
    // CAP_DAC_OVERRIDE(1) KILL(5) SETGID(6) SETUID(7) NET_ADMIN(12) NET_RAW(13).
    let kept: u64 = [1, 5, 6, 7, 12, 13].iter().map(|b| 1u64 << b).sum();
    for set in ["CapEff:", "CapPrm:"] {
        let v = u64::from_str_radix(&status_line(pid, set), 16).unwrap();
        assert_eq!(v, kept, "{set} {v:#x}");
    }
    assert_eq!(status_line(pid, "CapInh:"), "0000000000000000");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let rt = limits
        .lines()
        .find(|l| l.starts_with("Max realtime timeout"))
        .unwrap();
    let fields: Vec<&str> = rt.split_whitespace().collect();
    assert_eq!(fields[3..5], ["500000", "1000000"], "{rt}");
}

#[test]
fn a_replayed_advertisement_with_better_timing_never_leaves_the_vip_unanswered() {
    let lab = Lab::pair_as_user("replay");
    let client = lab.client.ns.clone();
    let captured = in_netns(&client, || packets::capture_carp("eth0", 3 * SEC)).unwrap();
    // Without the key: better timing (advskew 1, advbase 0), another source address.
    let replay = packets::rewrite_carp(&captured, Ipv4Addr::new(10, 0, 0, 66), |carp| {
        carp[2] = 1;
        carp[5] = 0;
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let client = client.clone();
        std::thread::spawn(move || {
            in_netns(&client, move || {
                let tx = packets::Sender::open("eth0").unwrap();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    tx.send_ipv4_multicast(&replay).unwrap();
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                sent
            })
        })
    };
    // 8 s of ARP requests every 10 ms: every one answered, by the master only.
    let probe = lab.arp_probe(VIP, 800, Duration::from_millis(10)).unwrap();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    assert!(sent >= 10, "{sent}");
    assert_eq!(probe.answered, probe.sent, "{probe:?}");
    assert_eq!(probe.macs, vec![lab.nodes[0].mac()], "{probe:?}");
    assert_eq!(lab.state(0, 1), "MASTER");
    assert_eq!(lab.state(1, 1), "BACKUP");
    let rejected = |i: usize| lab.rejected(i, "replayed") + lab.rejected(i, "own_counter");
    assert!(rejected(0) >= 10, "the master saw its own counter replayed");
    assert!(
        rejected(1) >= 10,
        "the backup saw a counter it had accepted"
    );
}

#[test]
fn a_random_source_flood_keeps_memory_and_logs_flat_and_changes_nothing() {
    let lab = Lab::pair_as_user("flood");
    let client = lab.client.ns.clone();
    let captured = in_netns(&client, || packets::capture_carp("eth0", 3 * SEC)).unwrap();
    let backup = lab.status(1).unwrap().pid;
    let rss = || {
        status_line(backup, "VmRSS:")
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before_rss = rss();
    let before_lines = lab.log_text(1).lines().count();
    let before_transitions: Vec<u64> = (0..2)
        .map(|i| lab.status(i).unwrap().groups[0].transitions)
        .collect();
    // 60,000 bad-HMAC advertisements, each from a new random source, as fast as the
    // client sends them in bursts of 400 every 10 ms: a fixed count, so a slower CPU
    // floods for longer rather than less.
    const FLOOD: u64 = 60_000;
    let sent = in_netns(&client, move || {
        let tx = packets::Sender::open("eth0").unwrap();
        let mut seed: u32 = 0x9e37_79b9;
        let mut sent = 0u64;
        while sent < FLOOD {
            for _ in 0..400 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let src = Ipv4Addr::from(0x0a00_0000 | (seed & 0x00ff_ffff));
                let bad = packets::rewrite_carp(&captured, src, |carp| carp[35] ^= 0x5a);
                tx.send_ipv4_multicast(&bad).unwrap();
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        sent
    });
    assert_eq!(sent, FLOOD);
    std::thread::sleep(SEC);
    let grown_kb = rss().saturating_sub(before_rss);
    assert!(grown_kb < 5 * 1024, "RSS grew by {grown_kb} kB");
    let lines = lab.log_text(1).lines().count() - before_lines;
    assert!(lines < 100, "{lines} log lines during the flood");
    let after: Vec<u64> = (0..2)
        .map(|i| lab.status(i).unwrap().groups[0].transitions)
        .collect();
    assert_eq!(after, before_transitions, "no takeover");
    assert_eq!(lab.state(0, 1), "MASTER");
    let bad_hmac = lab.rejected(1, "bad_hmac");
    assert!(bad_hmac > 1000, "{bad_hmac}");
}

#[test]
fn full_coverage_refuses_rewritten_timing_and_senders_outright() {
    let mut lab = Lab::new("authall", 2).unwrap();
    lab.as_user = true;
    for (i, skew) in [(0usize, 0u8), (1, 100)] {
        let path = lab.dir().join(format!("n{}.toml", i + 1));
        std::fs::write(
            &path,
            format!(
                "[[group]]\ninterface = \"eth0\"\nvhid = 1\nvips = [\"{VIP}/24\"]\n\
                 password = \"secret\"\nadvskew = {skew}\nauthenticate = \"all\"\n"
            ),
        )
        .unwrap();
        lab.start_vipd(i, &["run", "--config", &path.to_string_lossy()])
            .unwrap();
    }
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    assert!(
        lab.wait_state(1, 1, "BACKUP", 2 * SEC),
        "{}",
        lab.log_text(1)
    );
    let client = lab.client.ns.clone();
    let captured = in_netns(&client, || packets::capture_carp("eth0", 3 * SEC)).unwrap();
    // The same advertisement from elsewhere, then with better timing: not authentic.
    let elsewhere = packets::rewrite_carp(&captured, Ipv4Addr::new(10, 0, 0, 66), |_| {});
    let faster = packets::rewrite_carp(&captured, Ipv4Addr::new(10, 0, 0, 1), |carp| {
        carp[2] = 1;
        carp[5] = 0;
    });
    in_netns(&client, move || {
        let tx = packets::Sender::open("eth0").unwrap();
        tx.send_ipv4_multicast(&elsewhere).unwrap();
        tx.send_ipv4_multicast(&faster).unwrap();
    });
    std::thread::sleep(SEC);
    assert_eq!(lab.rejected(1, "bad_hmac"), 2);
    assert_eq!(lab.state(0, 1), "MASTER");
    assert_eq!(lab.state(1, 1), "BACKUP");
    assert_eq!(lab.arp_owners(VIP, 2), vec![lab.nodes[0].mac()]);
}

#[test]
fn a_source_address_the_interface_does_not_have_is_refused() {
    let lab = Lab::new("srcip", 1).unwrap();
    let mut flags = lab.ucarp_flags(0, 0, &[]);
    let s = flags.iter().position(|f| f == "-s").unwrap();
    flags[s + 1] = "10.0.0.77".into();
    let out = lab.nodes[0]
        .cmd(vipd_tests::vipd_bin())
        .args(&flags)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10.0.0.77 is not an address of eth0"), "{err}");
}
