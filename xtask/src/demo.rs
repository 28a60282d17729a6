//! `cargo xtask demo`: two vipd nodes and a client in network namespaces. The client pings
//! the VIP every 10 ms while the MASTER is demoted; the demo prints both nodes' status and
//! what the client saw, then removes the lab.
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use vipd_tests::{Lab, VIP};

pub fn run(vipd: &Path) -> Result<()> {
    // SAFETY: the lab builder reads the variable; nothing else runs concurrently yet.
    unsafe { std::env::set_var("VIPD_BIN", vipd) };
    println!(
        "==> building a lab: nodes n1 (10.0.0.1) and n2 (10.0.0.2), a client (10.0.0.200), VIP {VIP}"
    );
    let mut lab = Lab::new("demo", 2)?;
    println!("==> starting vipd on n1 (advskew 0) and n2 (advskew 100), advbase 1 s");
    lab.start_node(0, 0, &[])?;
    lab.start_node(1, 100, &[])?;
    if !lab.wait_state(0, 1, "MASTER", Duration::from_secs(10)) {
        bail!("n1 did not become MASTER:\n{}", lab.log_text(0));
    }
    lab.wait_state(1, 1, "BACKUP", Duration::from_secs(2));
    println!("==> n1 is MASTER; the client pings {VIP} every 10 ms for 6 s");
    let probe = lab.start_probe(VIP, Duration::from_millis(10), 600)?;
    std::thread::sleep(Duration::from_secs(2));
    println!("==> vipd demote --all on n1 (graceful hand-off)");
    print!("{}", lab.vipd_ctl(0, &["demote", "--all"])?);
    if !lab.wait_state(1, 1, "MASTER", Duration::from_secs(5)) {
        bail!("n2 did not take over:\n{}", lab.log_text(1));
    }
    let report = lab.finish_probe(probe)?;
    for i in 0..2 {
        println!("\n==> vipd status on n{}", i + 1);
        print!("{}", lab.vipd_ctl(i, &["status"])?);
    }
    println!(
        "\n==> client: {} probes sent, {} lost, longest gap between replies {:.1} ms",
        report.sent,
        report.lost(),
        report.longest_gap.as_secs_f64() * 1e3
    );
    println!("==> removing the lab");
    Ok(())
}
