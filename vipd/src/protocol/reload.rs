//! What a reload changes: every group of the new configuration compared with the running
//! one, by its (interface, vhid). Pure: the daemon carries the plan out.
//!
//! - Unchanged groups are not touched: no transition, no lease written, nothing sent.
//! - A group whose election or script settings changed is updated in place: it keeps its
//!   state, and its next advertisement carries the new values.
//! - A group whose VIPs, source address, advertisement destination, address mode or link
//!   handling changed is replaced: the running one hands over as at a clean stop, and the
//!   new one starts once the peer has taken over (or master-down has passed).
//! - Removed groups hand over as at a clean stop; added groups start in BACKUP.
use crate::config::GroupConfig;
use crate::trackers::TrackerConfig;

/// A group's identity in a configuration.
pub type GroupKey = (String, u8);

pub fn key_of(g: &GroupConfig) -> GroupKey {
    (g.interface.clone(), g.vhid)
}

/// What a reload does, group by group.
#[derive(Debug, Default)]
pub struct Plan {
    pub unchanged: Vec<GroupKey>,
    /// Same identity, new settings: applied in place.
    pub update: Vec<GroupConfig>,
    /// New identity under the same key: the running group hands over, then this one starts.
    pub replace: Vec<GroupConfig>,
    pub add: Vec<GroupConfig>,
    pub remove: Vec<GroupKey>,
    /// The tracker definitions changed: the trackers start again.
    pub trackers_changed: bool,
}

impl Plan {
    /// One line for the log and the `vipd reload` reply.
    pub fn summary(&self) -> String {
        let names = |keys: Vec<GroupKey>| -> String {
            keys.iter()
                .map(|(i, v)| format!("{i}/vhid{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut parts = vec![format!("{} unchanged", self.unchanged.len())];
        for (what, keys) in [
            ("added", self.add.iter().map(key_of).collect::<Vec<_>>()),
            ("updated", self.update.iter().map(key_of).collect()),
            ("replaced", self.replace.iter().map(key_of).collect()),
            ("removed", self.remove.clone()),
        ] {
            if !keys.is_empty() {
                parts.push(format!("{what}: {}", names(keys)));
            }
        }
        if self.trackers_changed {
            parts.push("trackers restarted".to_owned());
        }
        parts.join("; ")
    }

    /// Whether the reload changes nothing at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.update.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
            && !self.trackers_changed
    }
}

/// Whether a change from `old` to `new` can be applied to the running group: everything but
/// what decides which addresses it owns, where it advertises from and to, and how it
/// follows its link.
fn same_identity(old: &GroupConfig, new: &GroupConfig) -> bool {
    old.vips == new.vips
        && old.srcip == new.srcip
        && old.destination == new.destination
        && old.peers == new.peers
        && old.peer_ttl_check == new.peer_ttl_check
        && old.address_mode == new.address_mode
        && old.ignore_ifstate == new.ignore_ifstate
}

/// Compares the running groups and trackers with a new configuration's.
pub fn plan(
    running: &[&GroupConfig],
    running_trackers: &[TrackerConfig],
    new: &[GroupConfig],
    new_trackers: &[TrackerConfig],
) -> Plan {
    let mut plan = Plan::default();
    for g in new {
        match running.iter().find(|r| key_of(r) == key_of(g)) {
            None => plan.add.push(g.clone()),
            Some(r) if *r == g => plan.unchanged.push(key_of(g)),
            Some(r) if same_identity(r, g) => plan.update.push(g.clone()),
            Some(_) => plan.replace.push(g.clone()),
        }
    }
    for r in running {
        if !new.iter().any(|g| key_of(g) == key_of(r)) {
            plan.remove.push(key_of(r));
        }
    }
    plan.trackers_changed = running_trackers != new_trackers;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(text: &str) -> Config {
        Config::from_toml(std::path::Path::new("test.toml"), text).unwrap()
    }

    const BASE: &str = r#"
[[group]]
interface = "eth0"
vhid = 1
vips = ["10.0.0.100/24"]
password = "secret"

[[group]]
interface = "eth0"
vhid = 2
vips = ["10.0.0.101/24"]
password = "secret"
"#;

    fn plan_of(old: &str, new: &str) -> Plan {
        let (old, new) = (config(old), config(new));
        let running: Vec<&GroupConfig> = old.groups.iter().collect();
        plan(&running, &old.trackers, &new.groups, &new.trackers)
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let p = plan_of(BASE, BASE);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.unchanged.len(), 2);
        assert_eq!(p.summary(), "2 unchanged");
    }

    #[test]
    fn election_settings_are_updated_in_place() {
        let new = BASE.replacen(
            "password = \"secret\"",
            "password = \"secret\"\nadvskew = 50",
            1,
        );
        let p = plan_of(BASE, &new);
        assert_eq!(p.update.len(), 1, "{p:?}");
        assert_eq!(p.update[0].advskew, 50);
        assert_eq!(p.unchanged, vec![("eth0".to_owned(), 2)]);
        // A new password is a change too, though keys never print.
        let new = BASE.replacen("password = \"secret\"", "password = \"other\"", 1);
        assert_eq!(plan_of(BASE, &new).update.len(), 1);
    }

    #[test]
    fn new_addresses_replace_the_group() {
        let new = BASE.replacen("10.0.0.100/24", "10.0.0.110/24", 1);
        let p = plan_of(BASE, &new);
        assert_eq!(p.replace.len(), 1, "{p:?}");
        assert!(p.update.is_empty() && p.add.is_empty() && p.remove.is_empty());
        assert!(
            p.summary().contains("replaced: eth0/vhid1"),
            "{}",
            p.summary()
        );
    }

    #[test]
    fn groups_come_and_go_by_interface_and_vhid() {
        let new = BASE.replacen("vhid = 2", "vhid = 3", 1);
        let p = plan_of(BASE, &new);
        assert_eq!(
            p.add.iter().map(key_of).collect::<Vec<_>>(),
            vec![("eth0".to_owned(), 3)]
        );
        assert_eq!(p.remove, vec![("eth0".to_owned(), 2)]);
        assert_eq!(p.unchanged, vec![("eth0".to_owned(), 1)]);
        assert_eq!(
            p.summary(),
            "1 unchanged; added: eth0/vhid3; removed: eth0/vhid2"
        );
    }

    #[test]
    fn changed_trackers_restart_the_trackers_only() {
        let tracker = |interval: &str| {
            format!(
                "{BASE}\n[[tracker]]\nname = \"web\"\ntype = \"tcp\"\naddress = \"127.0.0.1:80\"\ninterval_ms = {interval}\n"
            )
        };
        let p = plan_of(&tracker("100"), &tracker("200"));
        assert!(p.trackers_changed);
        assert_eq!(p.unchanged.len(), 2);
        assert!(!plan_of(&tracker("100"), &tracker("100")).trackers_changed);
    }
}
