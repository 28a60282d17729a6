//! Migrating from ucarp with Debian's ifupdown: the ucarp options of an interface stanza
//! run vipd through the hook the package installs (packaging/ifupdown/vipd), called by
//! the real `ifup` and `ifdown` with `-i FILE`.
//!
//! Each node's `ip netns exec` sees the hook as /etc/network/if-up.d/vipd and
//! if-down.d/vipd (from /etc/netns/NS/network, which `ip netns exec` mounts over
//! /etc/network: no other package's hook runs, and the host's stay untouched), and the
//! vipd under test as /usr/local/sbin/vipd, first on the PATH ifupdown gives its hooks.
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use vipd_tests::{Lab, VIP, VIP2, node_addr, vipd_bin};

/// The hook as the package installs it.
fn hook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("packaging/ifupdown/vipd")
}

/// What a node needs to run ifupdown with vipd's hook; removed when dropped (the lab kills
/// the daemons).
struct Ifupdown {
    /// (namespace, inode of its network namespace) of each node set up.
    nodes: Vec<(String, u64)>,
}

impl Ifupdown {
    fn new() -> Ifupdown {
        Ifupdown { nodes: Vec::new() }
    }

    /// Installs the hooks and the vipd binary for node `i`.
    fn install(&mut self, lab: &Lab, i: usize) {
        let ns = &lab.nodes[i].ns;
        let etc = Path::new("/etc/netns").join(ns).join("network");
        for d in ["if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"] {
            std::fs::create_dir_all(etc.join(d)).unwrap();
        }
        let inode: u64 = lab.nodes[i]
            .ok("stat -L -c %i /proc/self/ns/net")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.nodes.push((ns.clone(), inode));
        for d in ["if-up.d", "if-down.d"] {
            let to = etc.join(d).join("vipd");
            std::fs::copy(hook(), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let bin = bin_dir(lab);
        std::fs::create_dir_all(&bin).unwrap();
        let _ = std::fs::remove_file(bin.join("vipd"));
        std::os::unix::fs::symlink(vipd_bin(), bin.join("vipd")).unwrap();
    }

    /// The hook's directory for node `i`'s namespace.
    fn run_dir(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/run/vipd/ifupdown/netns-{}", self.nodes[i].1))
    }
}

impl Drop for Ifupdown {
    fn drop(&mut self) {
        for (ns, inode) in &self.nodes {
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
            let _ = std::fs::remove_dir_all(format!("/run/vipd/ifupdown/netns-{inode}"));
        }
        // Only if empty: labs running at the same time may use them.
        let _ = std::fs::remove_dir("/run/vipd/ifupdown");
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

fn bin_dir(lab: &Lab) -> PathBuf {
    lab.dir().join("bin")
}

/// `ifup`/`ifdown` `-i FILE` on node `i`, with a state directory of its own.
fn ifupdown(lab: &Lab, i: usize, verb: &str, iface: &str, file: &Path) -> Output {
    let state = lab.dir().join(format!("ifstate-n{}", i + 1));
    std::fs::create_dir_all(&state).unwrap();
    lab.nodes[i].sh(&format!(
        "mount --bind {} /usr/local/sbin && exec {verb} -v -i {} --state-dir {} {iface}",
        bin_dir(lab).display(),
        file.display(),
        state.display()
    ))
}

/// Like [`ifupdown`], failing the test with ifupdown's output unless it succeeds.
fn ifupdown_ok(lab: &Lab, i: usize, verb: &str, iface: &str, file: &Path) {
    let out = ifupdown(lab, i, verb, iface, file);
    assert!(
        out.status.success(),
        "{verb} {iface} on node {} failed: {}{}",
        i + 1,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An interfaces file as a ucarp user writes it: node `n`'s address on `iface`, a ucarp
/// group, and the `IFACE:ucarp` alias that holds the VIP's prefix.
fn stanza(
    iface: &str,
    addr: Ipv4Addr,
    vid: u8,
    vip: Ipv4Addr,
    advskew: u8,
    master: &str,
) -> String {
    format!(
        "iface {iface} inet static\n\
         \x20   address {addr}/24\n\
         \x20   ucarp-vid {vid}\n\
         \x20   ucarp-vip {vip}\n\
         \x20   ucarp-password secret\n\
         \x20   ucarp-advbase 1\n\
         \x20   ucarp-advskew {advskew}\n\
         \x20   ucarp-master {master}\n\
         iface {iface}:ucarp inet static\n\
         \x20   address {vip}\n\
         \x20   netmask 255.255.255.0\n\n"
    )
}

/// The pid of the vipd that answers on node `i`, if one does.
fn daemon_pid(lab: &Lab, i: usize) -> Option<u32> {
    lab.status_as_user(i).ok().map(|s| s.pid)
}

#[test]
fn a_ucarp_stanza_runs_vipd_that_fails_over_with_a_peer() {
    let mut lab = Lab::new("ifupdown", 2).unwrap();
    lab.as_user = true;
    let mut ifupdown_guard = Ifupdown::new();
    ifupdown_guard.install(&lab, 0);
    // ifup configures node 1's address itself, as on a real host.
    lab.nodes[0].ok("ip addr flush dev eth0").unwrap();
    let file = lab.dir().join("interfaces");
    std::fs::write(&file, stanza("eth0", node_addr(1), 1, VIP, 0, "no")).unwrap();
    ifupdown_ok(&lab, 0, "ifup", "eth0", &file);
    lab.start_node(1, 100, &[]).unwrap();
    lab.expect_roles(&["MASTER", "BACKUP"]);

    // The VIP has the alias stanza's prefix; the password is on no command line and in a
    // file only root reads.
    assert!(
        lab.nodes[0]
            .ok("ip -4 -o addr show dev eth0")
            .unwrap()
            .contains(&format!("inet {VIP}/24")),
    );
    let pid = daemon_pid(&lab, 0).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.ends_with(&format!(
            "run --config {}/vipd.toml ",
            ifupdown_guard.run_dir(0).display()
        )),
        "{cmdline}"
    );
    let snippet = ifupdown_guard.run_dir(0).join("eth0.toml");
    let mode = std::fs::metadata(&snippet).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&snippet)
            .unwrap()
            .contains("password = \"secret\"")
    );
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);

    // ifdown stops vipd, which hands the VIP over.
    ifupdown_ok(&lab, 0, "ifdown", "eth0", &file);
    assert!(
        lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)),
        "{}",
        lab.log_text(1)
    );
    assert!(
        daemon_pid(&lab, 0).is_none(),
        "vipd still runs after ifdown"
    );
    assert!(!ifupdown_guard.run_dir(0).join("vipd.toml").exists());
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[1].mac()]);

    // `ucarp-master yes` is ucarp's -P: the better node takes the VIP back.
    std::fs::write(&file, stanza("eth0", node_addr(1), 1, VIP, 0, "yes")).unwrap();
    ifupdown_ok(&lab, 0, "ifup", "eth0", &file);
    lab.expect_roles(&["MASTER", "BACKUP"]);
    assert_eq!(lab.arp_owners(VIP, 3), vec![lab.nodes[0].mac()]);
    ifupdown_ok(&lab, 0, "ifdown", "eth0", &file);
    assert!(lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)));
}

#[test]
fn stanzas_of_one_namespace_share_one_vipd_reloaded_as_interfaces_come_and_go() {
    let mut lab = Lab::new("ifupdown2", 2).unwrap();
    lab.as_user = true;
    let mut ifupdown_guard = Ifupdown::new();
    ifupdown_guard.install(&lab, 0);
    lab.add_link(0, "eth1").unwrap();
    lab.nodes[0].ok("ip addr flush dev eth0").unwrap();
    let file = lab.dir().join("interfaces");
    let eth1 = Ipv4Addr::new(10, 0, 0, 11);
    std::fs::write(
        &file,
        format!(
            "iface lo inet loopback\n\n{}{}",
            stanza("eth0", node_addr(1), 1, VIP, 0, "no"),
            stanza("eth1", eth1, 2, VIP2, 0, "no")
        ),
    )
    .unwrap();

    // A stanza without ucarp options starts nothing.
    ifupdown_ok(&lab, 0, "ifup", "lo", &file);
    assert!(daemon_pid(&lab, 0).is_none());
    assert!(!ifupdown_guard.run_dir(0).exists());

    ifupdown_ok(&lab, 0, "ifup", "eth0", &file);
    lab.start_node(1, 100, &[]).unwrap();
    lab.expect_roles(&["MASTER", "BACKUP"]);
    let pid = daemon_pid(&lab, 0).unwrap();

    // The second stanza's group joins the same daemon.
    ifupdown_ok(&lab, 0, "ifup", "eth1", &file);
    assert!(
        lab.wait_state(0, 2, "MASTER", Duration::from_secs(8)),
        "{:?}",
        lab.status_as_user(0)
    );
    let status = lab.status_as_user(0).unwrap();
    assert_eq!(status.pid, pid, "reloaded, not restarted");
    assert_eq!(status.groups.len(), 2);
    assert_eq!(lab.state(0, 1), "MASTER");

    // Taking eth1 down removes its group only.
    ifupdown_ok(&lab, 0, "ifdown", "eth1", &file);
    assert!(Lab::wait_for(Duration::from_secs(5), || {
        lab.status_as_user(0)
            .is_ok_and(|s| s.groups.len() == 1 && s.groups[0].vhid == 1)
    }));
    assert_eq!(daemon_pid(&lab, 0), Some(pid));
    assert_eq!(lab.state(0, 1), "MASTER");

    // The last one stops it.
    ifupdown_ok(&lab, 0, "ifdown", "eth0", &file);
    assert!(lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)));
    assert!(daemon_pid(&lab, 0).is_none());
}

#[test]
fn a_bad_stanza_fails_ifup_and_starts_nothing() {
    let lab = Lab::new("ifupdown3", 1).unwrap();
    let mut ifupdown_guard = Ifupdown::new();
    ifupdown_guard.install(&lab, 0);
    let file = lab.dir().join("interfaces");
    for (bad, says) in [
        (
            "ucarp-advskew ten",
            "ucarp-advskew: \"ten\" is not a number",
        ),
        ("ucarp-advskew 300", "advskew"),
    ] {
        // ifup failed after adding the address: it does not take it down again.
        lab.nodes[0].ok("ip addr flush dev eth0").unwrap();
        let text = stanza("eth0", node_addr(1), 1, VIP, 0, "no").replace("ucarp-advskew 0", bad);
        std::fs::write(&file, text).unwrap();
        let out = ifupdown(&lab, 0, "ifup", "eth0", &file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(daemon_pid(&lab, 0).is_none());
        assert!(!ifupdown_guard.run_dir(0).join("eth0.toml").exists());
    }
}
