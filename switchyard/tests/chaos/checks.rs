//! The checks as pure functions of what was observed: presence and occupancy against the live
//! clients, each client's member list, triggers against what the API accepted, and webhooks
//! against who joined and left. Each returns what is wrong (empty or zero when right).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::cluster::{count_events, count_per_user};

/// How one client's member list differs from the live users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListDiff {
    pub extra: BTreeSet<String>,
    pub lacks: BTreeSet<String>,
}

/// How the cluster's state differs from the live clients at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDiff {
    /// In the REST users list but not a live client.
    pub ghosts: BTreeSet<String>,
    /// A live client missing from the REST users list.
    pub missing: BTreeSet<String>,
    /// Live clients whose own member list is wrong, and how.
    pub wrong_lists: BTreeMap<String, ListDiff>,
    /// The feed's REST `subscription_count` minus its live subscribers.
    pub occupancy: i64,
    /// A REST read that failed.
    pub unreadable: Option<String>,
}

impl StateDiff {
    pub fn is_clean(&self) -> bool {
        *self == StateDiff::default()
    }

    /// What is wrong now beyond what was wrong in `before`, so damage from an earlier round is
    /// not counted again: its ghosts and missing members, and their traces in member lists (a
    /// client joining later is told of a lasting ghost too), are left out.
    pub fn since(&self, before: &StateDiff) -> StateDiff {
        let minus = |a: &BTreeSet<String>, b: &BTreeSet<String>, c: Option<&BTreeSet<String>>| {
            let known = |u: &String| b.contains(u) || c.is_some_and(|c| c.contains(u));
            a.iter()
                .filter(|u| !known(u))
                .cloned()
                .collect::<BTreeSet<String>>()
        };
        let wrong_lists = self.wrong_lists.iter().filter_map(|(user, list)| {
            let was = before.wrong_lists.get(user);
            let new = ListDiff {
                extra: minus(&list.extra, &before.ghosts, was.map(|w| &w.extra)),
                lacks: minus(&list.lacks, &before.missing, was.map(|w| &w.lacks)),
            };
            (new != ListDiff::default()).then(|| (user.clone(), new))
        });
        StateDiff {
            ghosts: minus(&self.ghosts, &before.ghosts, None),
            missing: minus(&self.missing, &before.missing, None),
            wrong_lists: wrong_lists.collect(),
            occupancy: if self.occupancy.abs() > before.occupancy.abs() {
                self.occupancy
            } else {
                0
            },
            unreadable: self.unreadable.clone(),
        }
    }

    /// In words, naming a few of each (a broken cluster may have hundreds).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.ghosts.is_empty() {
            parts.push(format!("ghosts {}", few(&self.ghosts)));
        }
        if !self.missing.is_empty() {
            parts.push(format!("missing {}", few(&self.missing)));
        }
        for (user, list) in self.wrong_lists.iter().take(3) {
            parts.push(format!(
                "{user}'s list has extra {}, lacks {}",
                few(&list.extra),
                few(&list.lacks)
            ));
        }
        if self.wrong_lists.len() > 3 {
            parts.push(format!("{} more wrong lists", self.wrong_lists.len() - 3));
        }
        if self.occupancy != 0 {
            parts.push(format!(
                "feed subscription_count off by {:+}",
                self.occupancy
            ));
        }
        if let Some(why) = &self.unreadable {
            parts.push(format!("REST unreadable: {why}"));
        }
        parts.join("; ")
    }
}

/// Up to four names, and how many more.
pub fn few<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&String> = names.into_iter().collect();
    let shown: Vec<&str> = names.iter().take(4).map(|n| n.as_str()).collect();
    match names.len() {
        0..=4 => format!("[{}]", shown.join(", ")),
        n => format!("[{}, +{} more]", shown.join(", "), n - 4),
    }
}

/// Compares the REST users list, each live client's member list (user, list) and the feed's
/// subscription count with the live users.
pub fn state_diff(
    rest_users: &BTreeSet<String>,
    lists: &[(String, BTreeSet<String>)],
    live: &BTreeSet<String>,
    subscription_count: u64,
) -> StateDiff {
    let list_diff = |list: &BTreeSet<String>| ListDiff {
        extra: list.difference(live).cloned().collect(),
        lacks: live.difference(list).cloned().collect(),
    };
    StateDiff {
        ghosts: rest_users.difference(live).cloned().collect(),
        missing: live.difference(rest_users).cloned().collect(),
        wrong_lists: lists
            .iter()
            .map(|(user, list)| (user.clone(), list_diff(list)))
            .filter(|(_, diff)| *diff != ListDiff::default())
            .collect(),
        occupancy: subscription_count as i64 - live.len() as i64,
        unreadable: None,
    }
}

/// Triggers that did not arrive once.
#[derive(Debug, Default, PartialEq)]
pub struct TriggerFaults {
    /// (client, accepted trigger) pairs that never arrived.
    pub lost: usize,
    /// Extra copies that arrived.
    pub duplicates: usize,
    /// A few examples, for the report.
    pub examples: Vec<String>,
}

/// Checks that every client in `received` (user, trigger number → copies) got each of
/// `accepted` exactly once.
pub fn trigger_faults(accepted: &[u64], received: &[(String, HashMap<u64, u32>)]) -> TriggerFaults {
    let mut faults = TriggerFaults::default();
    for (user, got) in received {
        let lost: Vec<u64> = accepted
            .iter()
            .filter(|n| !got.contains_key(n))
            .copied()
            .collect();
        let extra: usize = got.values().map(|c| c.saturating_sub(1) as usize).sum();
        if !lost.is_empty() && faults.examples.len() < 4 {
            let shown = &lost[..lost.len().min(5)];
            faults
                .examples
                .push(format!("{user} lost {} (e.g. {shown:?})", lost.len()));
        }
        if extra > 0 && faults.examples.len() < 4 {
            faults
                .examples
                .push(format!("{user} got {extra} duplicate(s)"));
        }
        faults.lost += lost.len();
        faults.duplicates += extra;
    }
    faults
}

/// Webhook accounts that do not balance: per user `member_added − member_removed` on the
/// presence channel minus 1 if live (0 if gone), and per channel `channel_occupied −
/// channel_vacated` minus 1 (every checked channel stays occupied). `events` must be distinct
/// (redeliveries removed). Keys are "user X" / "channel X"; only non-zero entries are kept.
pub fn webhook_diffs(
    events: &[Value],
    presence: &str,
    users: &[(String, bool)],
    occupied: &[String],
) -> BTreeMap<String, i64> {
    let added = count_per_user(events, "member_added", presence);
    let removed = count_per_user(events, "member_removed", presence);
    let mut diffs = BTreeMap::new();
    for (user, live) in users {
        let net = *added.get(user).unwrap_or(&0) as i64 - *removed.get(user).unwrap_or(&0) as i64;
        diffs.insert(format!("user {user}"), net - i64::from(*live));
    }
    for channel in occupied {
        let net = count_events(events, "channel_occupied", channel, None) as i64
            - count_events(events, "channel_vacated", channel, None) as i64;
        diffs.insert(format!("channel {channel}"), net - 1);
    }
    diffs.retain(|_, d| *d != 0);
    diffs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(users: &[&str]) -> BTreeSet<String> {
        users.iter().map(|u| (*u).to_owned()).collect()
    }

    #[test]
    fn state_diff_names_ghosts_missing_and_wrong_lists() {
        let live = set(&["a", "b"]);
        let lists = vec![
            ("a".to_owned(), set(&["a", "b"])),
            ("b".to_owned(), set(&["b", "x"])),
        ];
        let diff = state_diff(&set(&["b", "x"]), &lists, &live, 3);
        assert_eq!(diff.ghosts, set(&["x"]));
        assert_eq!(diff.missing, set(&["a"]));
        assert_eq!(diff.wrong_lists.len(), 1);
        let b = &diff.wrong_lists["b"];
        assert_eq!((&b.extra, &b.lacks), (&set(&["x"]), &set(&["a"])));
        assert_eq!(diff.occupancy, 1);
        assert!(!diff.is_clean());
        assert!(state_diff(&live, &lists[..1], &live, 2).is_clean());
    }

    #[test]
    fn earlier_damage_is_not_counted_again() {
        let live = set(&["a"]);
        let before = state_diff(&set(&["a", "g1"]), &[], &live, 2);
        let now = state_diff(&set(&["a", "g1", "g2"]), &[], &live, 2);
        let new = now.since(&before);
        assert_eq!(new.ghosts, set(&["g2"]));
        assert_eq!(new.occupancy, 0, "the same occupancy error is not new");
        // A client that joined later is told of the old ghost: not new; of the new one: new.
        let lists = vec![("b".to_owned(), set(&["a", "b", "g1", "g2"]))];
        let live = set(&["a", "b"]);
        let now = state_diff(&set(&["a", "b", "g1", "g2"]), &lists, &live, 2);
        let new = now.since(&before);
        assert_eq!(new.wrong_lists["b"].extra, set(&["g2"]));
        assert!(new.wrong_lists["b"].lacks.is_empty());
        assert!(now.since(&now).is_clean());
        let many: BTreeSet<String> = (1..=6).map(|n| format!("u{n}")).collect();
        assert_eq!(few(&many), "[u1, u2, u3, u4, +2 more]");
    }

    #[test]
    fn triggers_lost_and_duplicated_are_counted_per_client() {
        let got_all: HashMap<u64, u32> = [(1, 1), (2, 1), (3, 1)].into();
        let got_some: HashMap<u64, u32> = [(1, 2), (3, 1)].into();
        let faults = trigger_faults(&[1, 2, 3], &[("a".into(), got_all), ("b".into(), got_some)]);
        assert_eq!((faults.lost, faults.duplicates), (1, 1));
        assert_eq!(
            trigger_faults(&[1], &[("a".into(), [(1, 1)].into())]),
            TriggerFaults::default()
        );
    }

    #[test]
    fn webhook_accounts_balance_per_user_and_channel() {
        let hook = |name: &str, channel: &str, user: &str| json!({"name": name, "channel": channel, "user_id": user});
        let events = vec![
            hook("channel_occupied", "p", ""),
            hook("member_added", "p", "a"),
            hook("member_added", "p", "b"),
            hook("member_removed", "p", "b"),
            hook("member_added", "p", "c"),
        ];
        let users = [
            ("a".to_owned(), true),
            ("b".to_owned(), false),
            ("c".to_owned(), false),
            ("d".to_owned(), true),
        ];
        let diffs = webhook_diffs(&events, "p", &users, &["p".to_owned(), "q".to_owned()]);
        let expected: BTreeMap<String, i64> = [
            ("user c".to_owned(), 1),     // its member_removed is missing
            ("user d".to_owned(), -1),    // its member_added is missing
            ("channel q".to_owned(), -1), // never occupied
        ]
        .into();
        assert_eq!(diffs, expected);
    }
}
