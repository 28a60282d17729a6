//! Validation of the group ucarp's flags describe (`vipd -i eth0 -v 1 -a ...`): the input
//! is a command line, split at whitespace, parsed by vipd's own command-line definition and
//! mapped to a `RawGroup` by vipd's own ucarp mapping; `Config::from_raw` must refuse it
//! with a message naming the flag or return a configuration that holds what validation
//! promises, and never panic.
//!
//! A password file named by the input is replaced by a fixture (see
//! `vipd_fuzz::password_file`); script paths are only checked for existence.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use vipd::config::Config;
use vipd::config::cli::Cli;
use vipd::config::ucarp;
use vipd_fuzz::{check_valid, sandbox_password_files};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let words = std::iter::once("vipd").chain(line.split_ascii_whitespace());
    // What the flag parser refuses never reaches validation.
    let Ok(cli) = Cli::try_parse_from(words) else {
        return;
    };
    if cli.cmd.is_some() {
        return;
    }
    let mut groups = vec![ucarp::raw_group(cli.ucarp)];
    sandbox_password_files(&mut groups);
    match Config::from_raw(groups, |_| String::from("--")) {
        Ok(config) => {
            check_valid(&config);
            assert_eq!(config.groups.len(), 1);
        }
        Err(e) => assert!(e.to_string().starts_with("--"), "{e}"),
    }
});
