//! `vipd status --json` is documented field by field in docs/status-json.md: this test
//! fails when a field is added to or removed from the output without the document
//! following (and when the document's example stops parsing).
use std::collections::BTreeSet;

use serde_json::Value;
use vipd::ops::control::{SCHEMA_VERSION, Status};

const DOC: &str = include_str!("../../docs/status-json.md");

/// The field paths the document's tables list (`groups[].vhid`, `control.timeout`, ...).
fn documented() -> BTreeSet<String> {
    DOC.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(path, _)| path.to_owned())
        .collect()
}

/// Every field path of a serialized value: objects inside arrays as `name[].field`;
/// arrays of scalars or of pairs are leaves.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                paths(v, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items.iter().filter(|i| i.is_object()) {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// A status with every optional part present, through the same type the daemon
/// serializes: the fields it does not name take their defaults.
fn sample() -> Status {
    let group = serde_json::json!({
        "interface": "eth0", "vhid": 1, "vips": ["10.0.0.100/24"], "state": "DRAINING",
        "since_secs": 1.5, "master": "10.0.0.1", "advbase": 1, "advskew": 0,
        "demoted": true, "last_advert_ms": 100, "transitions": 2, "adverts_sent": 3,
        "adverts_received": 4, "rejected": [["replayed", 1]],
        "draining": { "connections": 3, "remaining_secs": 2.5 },
        "forwarding": { "to": "10.0.0.2", "mac": "02:00:00:00:00:02", "remaining_secs": 1.0 }
    });
    let status = serde_json::json!({
        "pid": 42, "groups": [group], "xdp": [["pass_other", 1]], "unknown_group": 0,
        "interfaces": [{ "name": "eth0", "ifindex": 2, "mode": "tc", "adopted": false }],
        "trackers": [{ "name": "web", "healthy": true, "value": 1, "since_secs": 0.5 }]
    });
    serde_json::from_value(status).expect(
        "the sample misses a field the status requires: add it here and to docs/status-json.md",
    )
}

#[test]
fn every_field_of_the_status_is_documented_and_every_documented_field_exists() {
    let doc = documented();
    assert!(
        doc.contains("schema") && doc.contains("groups[].vhid"),
        "{doc:?}"
    );
    let mut seen = BTreeSet::new();
    paths(&serde_json::to_value(sample()).unwrap(), "", &mut seen);
    let undocumented: Vec<&String> = seen.difference(&doc).collect();
    let gone: Vec<&String> = doc.difference(&seen).collect();
    assert!(
        undocumented.is_empty() && gone.is_empty(),
        "docs/status-json.md is out of date: fields not documented {undocumented:?}, \
         documented fields the status no longer has {gone:?}"
    );
}

#[test]
fn the_documented_version_and_example_are_the_current_ones() {
    assert!(
        DOC.contains(&format!("now **{SCHEMA_VERSION}**")),
        "docs/status-json.md names another schema version than {SCHEMA_VERSION}"
    );
    let example = DOC
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("the document has a JSON example");
    let parsed: Status = serde_json::from_str(example).expect("the example parses");
    assert_eq!(parsed.schema, SCHEMA_VERSION);
    // The example shows every field of the top level and of a group.
    let mut in_example = BTreeSet::new();
    paths(
        &serde_json::from_str::<Value>(example).unwrap(),
        "",
        &mut in_example,
    );
    let mut in_parsed = BTreeSet::new();
    paths(&serde_json::to_value(&parsed).unwrap(), "", &mut in_parsed);
    assert_eq!(in_example, in_parsed, "the example lacks fields");
}
