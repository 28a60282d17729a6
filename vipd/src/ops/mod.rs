//! What operators use: the control socket and its rendering ([`control`]), Prometheus
//! metrics ([`metrics`]), user scripts ([`scripts`]), privileges ([`privileges`]), systemd
//! notifications ([`systemd`]), remembered demotions and the instance lock ([`state`]).
//!
//! Serves and reports; never decides ownership: requests go to the daemon as events.
pub mod control;
pub(crate) mod metrics;
pub(crate) mod privileges;
pub(crate) mod scripts;
pub(crate) mod state;
pub(crate) mod systemd;
