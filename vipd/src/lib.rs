//! vipd: virtual-IP failover with CARP, VIP ownership decided in XDP.
//!
//! Modules, in the order data flows: `config` (flags and TOML) -> `dataplane` (XDP/TC
//! programs and maps) and `addr` (VIP addresses) -> `carp` (wire codec) -> `election`
//! (pure state machine) -> `daemon` (carries out its actions: `garp` frames, `scripts`)
//! -> `control` (status and hand-off commands).
pub mod addr;
pub mod carp;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod election;
pub mod garp;
pub mod scripts;
