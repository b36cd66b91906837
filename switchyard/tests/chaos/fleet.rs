//! [`Fleet`]: the workload's clients on both edges. Each client has its own presence user;
//! one the server closes is replaced by a new client (a new user) on the same edge, as a
//! pusher-js app reconnects, and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::client::{self, Phase, Spec, Tracked};

/// How long a closed client waits before it is replaced (pusher-js backs off too), so a
/// refusing cluster is not hammered.
const REPLACE_AFTER: Duration = Duration::from_millis(250);

struct Slot {
    spec: Spec,
    state: Arc<Mutex<Tracked>>,
    leave: Option<oneshot::Sender<()>>,
    replaced: bool,
}

/// A client as the checks see it.
pub struct View {
    pub user: String,
    pub edge: usize,
    pub phase: Phase,
    pub members: BTreeSet<String>,
}

/// What [`Fleet::replace_closed`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Replaced {
    /// Live clients the server closed or dropped.
    pub closed: usize,
    /// Clients that never got live (refused or unreachable).
    pub refused: usize,
    /// How many ended for each kind of reason ("closed 4200", "dropped", "refused"…).
    pub reasons: BTreeMap<String, usize>,
}

impl Replaced {
    pub fn add(&mut self, other: Replaced) {
        self.closed += other.closed;
        self.refused += other.refused;
        for (reason, n) in other.reasons {
            *self.reasons.entry(reason).or_default() += n;
        }
    }
}

/// The kind of a close reason: "closed <code>" or its first word.
fn reason_kind(why: &str) -> String {
    let mut words = why.split_whitespace();
    match (words.next(), words.next()) {
        (Some("closed"), Some(code)) => format!("closed {code}"),
        (Some(first), _) => first.trim_end_matches(':').to_owned(),
        _ => "unknown".to_owned(),
    }
}

pub struct Fleet {
    addrs: [SocketAddr; 2],
    feed: String,
    presence: String,
    slots: Vec<Slot>,
}

impl Fleet {
    /// The user ids are short: the chaos cluster's NATS and Redis are its own.
    pub fn new(addrs: [SocketAddr; 2], feed: String, presence: String) -> Fleet {
        Fleet {
            addrs,
            feed,
            presence,
            slots: Vec::new(),
        }
    }

    /// Starts a new client (a new user) on `edge`; every other one signs in.
    pub fn join(&mut self, edge: usize) -> String {
        let n = self.slots.len() + 1;
        let spec = Spec {
            user: format!("u{n}"),
            edge,
            addr: self.addrs[edge],
            feed: self.feed.clone(),
            presence: self.presence.clone(),
            signs_in: n.is_multiple_of(2),
        };
        let (state, leave) = client::spawn(spec.clone());
        self.slots.push(Slot {
            spec,
            state,
            leave: Some(leave),
            replaced: false,
        });
        self.slots[n - 1].spec.user.clone()
    }

    /// The oldest live client on `edge` leaves; returns its user.
    pub fn leave(&mut self, edge: usize) -> Option<String> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.spec.edge == edge && s.state.lock().expect("lock").phase == Phase::Live)?;
        // The task marks itself Left at once; the close frame follows.
        let _ = slot.leave.take()?.send(());
        Some(slot.spec.user.clone())
    }

    /// Replaces every client that was closed a moment ago by a new one on the same edge.
    pub fn replace_closed(&mut self) -> Replaced {
        let mut done = Replaced::default();
        let mut edges = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| !s.replaced) {
            let t = slot.state.lock().expect("lock");
            let (Phase::Closed { was_live, why }, Some(at)) = (&t.phase, t.closed_at) else {
                continue;
            };
            if at.elapsed() < REPLACE_AFTER {
                continue;
            }
            if *was_live {
                done.closed += 1;
            } else {
                done.refused += 1;
            }
            *done.reasons.entry(reason_kind(why)).or_default() += 1;
            drop(t);
            slot.replaced = true;
            edges.push(slot.spec.edge);
        }
        for edge in edges {
            self.join(edge);
        }
        done
    }

    /// Live clients on `edge`.
    pub fn live_on(&self, edge: usize) -> usize {
        self.views()
            .filter(|v| v.edge == edge && v.phase == Phase::Live)
            .count()
    }

    /// No client is still connecting or joining, and none waits to be replaced.
    pub fn settled(&self) -> bool {
        self.slots.iter().all(|s| {
            let phase = &s.state.lock().expect("lock").phase;
            matches!(phase, Phase::Live | Phase::Left)
                || (s.replaced && matches!(phase, Phase::Closed { .. }))
        })
    }

    pub fn views(&self) -> impl Iterator<Item = View> + '_ {
        self.slots.iter().map(|s| {
            let t = s.state.lock().expect("lock");
            View {
                user: s.spec.user.clone(),
                edge: s.spec.edge,
                phase: t.phase.clone(),
                members: t.members.clone(),
            }
        })
    }

    /// The users of the live clients: what presence must show.
    pub fn live(&self) -> BTreeSet<String> {
        self.views()
            .filter(|v| v.phase == Phase::Live)
            .map(|v| v.user)
            .collect()
    }

    /// Every user ever started, and whether it is live now.
    pub fn users(&self) -> Vec<(String, bool)> {
        self.views()
            .map(|v| (v.user, v.phase == Phase::Live))
            .collect()
    }

    /// Per user in `users`, the trigger numbers in `range` it received and how often.
    pub fn received(
        &self,
        users: &BTreeSet<String>,
        range: Range<u64>,
    ) -> Vec<(String, HashMap<u64, u32>)> {
        self.slots
            .iter()
            .filter(|s| users.contains(&s.spec.user))
            .map(|s| {
                let t = s.state.lock().expect("lock");
                let got = t
                    .received
                    .iter()
                    .filter(|(n, _)| range.contains(n))
                    .map(|(n, c)| (*n, *c));
                (s.spec.user.clone(), got.collect())
            })
            .collect()
    }

    /// Every client leaves.
    pub fn leave_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(leave) = slot.leave.take() {
                let _ = leave.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reason_kind;

    #[test]
    fn close_reasons_are_grouped_by_code_or_first_word() {
        assert_eq!(reason_kind("closed 4200 reconnect"), "closed 4200");
        assert_eq!(reason_kind("dropped: stream ended"), "dropped");
        assert_eq!(reason_kind("refused: {...}"), "refused");
        assert_eq!(reason_kind(""), "unknown");
    }
}
