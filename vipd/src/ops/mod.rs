//! What operators use: the control socket and its rendering ([`control`]), Prometheus
//! metrics ([`metrics`]), user scripts ([`scripts`]), privileges ([`privileges`]), systemd
//! notifications ([`systemd`]), remembered demotions and the instance lock ([`state`]).
//!
//! Serves and reports; never decides ownership: requests go to the daemon as events.
pub mod control;
pub mod metrics;
pub mod privileges;
pub mod scripts;
pub mod state;
pub mod systemd;
