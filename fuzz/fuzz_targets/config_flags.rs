//! Validation of the group ucarp's flags describe (`vipd -i eth0 -v 1 -a ...`): the input
//! is a command line, split at whitespace, whose flags fill a `RawGroup` as `vipd` fills
//! it; `Config::from_raw` must refuse it with a message naming the flag or return a
//! configuration that holds what validation promises, and never panic.
//!
//! A password file named by the input is replaced by a fixture (see
//! `vipd_fuzz::password_file`); script paths are only checked for existence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::{Config, RawGroup};
use vipd_fuzz::{check_valid, sandbox_password_files};

/// The group a command line describes, or `None` where the flag parser would stop (a
/// number that is not one, a flag without its value). Unknown words are skipped.
fn group(line: &str) -> Option<RawGroup> {
    let mut g = RawGroup::default();
    let mut words = line.split_ascii_whitespace();
    while let Some(flag) = words.next() {
        let mut value = || words.next().map(str::to_owned);
        match flag {
            "-i" | "--interface" => g.interface = Some(value()?),
            "-s" | "--srcip" => g.srcip = Some(value()?),
            "-m" | "--mcast" => g.multicast = Some(value()?),
            "-v" | "--vhid" => g.vhid = Some(value()?.parse().ok()?),
            "-p" | "--pass" => g.password = Some(value()?),
            "-o" | "--passfile" => g.password_file = Some(value()?.into()),
            "-a" | "--addr" => g.vips.push(value()?),
            "-b" | "--advbase" => g.advbase = Some(value()?.parse().ok()?),
            "-k" | "--advskew" => g.advskew = Some(value()?.parse().ok()?),
            "-u" | "--upscript" => g.upscript = Some(value()?.into()),
            "-d" | "--downscript" => g.downscript = Some(value()?.into()),
            "-r" | "--deadratio" => g.dead_ratio = Some(value()?.parse().ok()?),
            "-x" | "--xparam" => g.xparam = Some(value()?),
            "-f" | "--facility" => drop(value()?),
            "-P" | "--preempt" => g.preempt = true,
            "-n" | "--neutral" => g.neutral = true,
            "-z" | "--shutdown" => g.shutdown_script = true,
            "-S" | "--ignoreifstate" => g.ignore_ifstate = true,
            "-M" | "--nomcast" => g.broadcast = true,
            _ => {}
        }
    }
    Some(g)
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Some(raw) = group(line) else {
        return;
    };
    let mut groups = vec![raw];
    sandbox_password_files(&mut groups);
    match Config::from_raw(groups, |_| String::from("--")) {
        Ok(config) => {
            check_valid(&config);
            assert_eq!(config.groups.len(), 1);
        }
        Err(e) => assert!(e.to_string().starts_with("--"), "{e}"),
    }
});
