//! The control protocol on arbitrary bytes: a request line as the daemon parses it (one
//! JSON object into `Request`, as the control server does), and a reply line as
//! `vipd status|demote|promote` parses it (into `Reply`), rendered as `vipd status` prints
//! it. Neither side may panic; what parses must serialize and parse back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::ops::control::{self, Reply, Request};

fuzz_target!(|line: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<Request>(line) {
        // The client writes requests this way; the daemon must read back the same one.
        let text = serde_json::to_string(&request).expect("requests serialize");
        assert_eq!(serde_json::from_str::<Request>(&text).ok(), Some(request));
    }
    if let Ok(reply) = serde_json::from_slice::<Reply>(line) {
        // The daemon writes replies this way; the client must be able to read them.
        let text = serde_json::to_vec(&reply).expect("replies serialize");
        let again: Reply = serde_json::from_slice(&text).expect("a written reply parses");
        assert_eq!(
            std::mem::discriminant(&again),
            std::mem::discriminant(&reply)
        );
        if let Reply::Status(status) = &reply {
            let table = control::render(status);
            assert!(table.contains("INTERFACE"));
            serde_json::to_string_pretty(status).expect("status serializes");
        }
    }
});
