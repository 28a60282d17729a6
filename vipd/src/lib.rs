//! vipd: virtual-IP failover with CARP, VIP ownership decided in XDP.
//!
//! Modules, in the order data flows: `config` (flags and TOML) -> `rx` (the one receive
//! pass over `carp`, the wire codec) -> `group` (the pure core: `election`, timers and VIP
//! ownership) -> `executor` (carries out its commands) -> `effects` (the one boundary to
//! the kernel: `dataplane` maps, `garp` frames, `addr` addresses, `scripts`). `daemon`
//! builds all of it and runs the event loop; `control` serves status and hand-off commands.
pub mod addr;
pub mod carp;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod effects;
pub mod election;
pub mod executor;
pub mod garp;
pub mod group;
pub mod metrics;
pub mod privileges;
pub mod reload;
pub mod rx;
pub mod scripts;
pub mod sockdiag;
pub mod trackers;
