//! Nanoseconds per packet of vipd's XDP program (BPF_PROG_TEST_RUN, timed by the kernel)
//! for a pass-through TCP SYN and for a CARP advertisement of a configured group, inside a
//! one-node lab. Prints `syn_ns=<f64> advert_ns=<f64>`; `cargo xtask bench` runs it.
use anyhow::{Context, Result};
use vipd::kernel::dataplane::{Dataplane, ifindex};
use vipd_tests::{Lab, VIP, frames, in_netns};

fn main() -> Result<()> {
    let repeat: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let lab = Lab::new("xdpcost", 1)?;
    let pin = lab.pin_dir(0);
    let (syn_ns, advert_ns) = in_netns(&lab.nodes[0].ns.clone(), move || -> Result<(f64, f64)> {
        let mut dp = Dataplane::load(&pin, &[])?;
        let ifindex = ifindex("eth0")?;
        let rx = vipd::kernel::dataplane::Reception {
            destination: std::net::Ipv4Addr::new(224, 0, 0, 18),
            peers: Vec::new(),
            ttl_check: true,
        };
        dp.add_group(ifindex, 1, &rx)?;
        let mut ring = dp.take_adverts().context("advertisement ring buffer")?;
        let (_, syn_ns) = dp.test_run_xdp(&frames::tcp_syn(VIP), ifindex, repeat)?;
        // Advertisements fill the ring buffer: run batches it can hold, draining between.
        let advert = frames::ipv4(&frames::hex(frames::UCARP_ADVERT));
        let batches = (repeat / 2000).clamp(1, 100);
        let mut total = 0.0;
        for _ in 0..batches {
            let (_, ns) = dp.test_run_xdp(&advert, ifindex, 2000)?;
            total += f64::from(ns);
            while ring.next().is_some() {}
        }
        Ok((f64::from(syn_ns), total / f64::from(batches)))
    })?;
    println!("syn_ns={syn_ns:.2} advert_ns={advert_ns:.2}");
    Ok(())
}
