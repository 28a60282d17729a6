//! The configuration file parser on arbitrary UTF-8: `Config::from_toml` must return a
//! configuration or an error naming the field, never panic, and whatever it accepts must
//! hold what validation promises. Text that is not TOML must be refused while parsing.
//!
//! Validation reads password files. So that no input makes the target open a path of its
//! choosing (a device, a FIFO), every `password_file` string in the document, at any
//! depth, is replaced by a fixture (see `vipd_fuzz::password_file`) before the document is
//! validated; a document without one is validated as it is. Other paths are only looked
//! at (existence, owner, mode). Nothing here writes a file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};
use vipd::config::{Config, ConfigError};
use vipd_fuzz::{check_valid, password_file};

/// Replaces the value of every `password_file` key that holds a string by a fixture's
/// path; whether there was one.
fn sandbox_table(table: &mut Table) -> bool {
    let mut replaced = false;
    for (key, value) in table.iter_mut() {
        match value {
            Value::String(s) if key == "password_file" => {
                *s = password_file(Path::new(s)).to_string_lossy().into_owned();
                replaced = true;
            }
            other => replaced |= sandbox_value(other),
        }
    }
    replaced
}

fn sandbox_value(value: &mut Value) -> bool {
    match value {
        Value::Table(t) => sandbox_table(t),
        Value::Array(a) => a.iter_mut().fold(false, |r, v| sandbox_value(v) | r),
        _ => false,
    }
}

fn check(result: Result<Config, ConfigError>) {
    match result {
        Ok(config) => check_valid(&config),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let Ok(mut document) = text.parse::<Table>() else {
        match Config::from_toml(path, text) {
            Err(ConfigError::Parse { message, .. }) => assert!(!message.is_empty()),
            other => panic!("text that is not TOML gave {other:?}"),
        }
        return;
    };
    if !sandbox_table(&mut document) {
        check(Config::from_toml(path, text));
    } else if let Ok(sandboxed) = toml::to_string(&document) {
        check(Config::from_toml(path, &sandboxed));
    }
});
