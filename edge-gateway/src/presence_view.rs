//! What this edge's clients were told about each presence channel's members, kept so that an
//! edge that missed `member_added` / `member_removed` events (a bus outage, a lost publish) can
//! bring every client's list right with ordinary events.
//!
//! Core stamps each membership event with the channel's sequence number. Events may arrive out
//! of order (two core replicas relay them side by side) or twice (a relay retried), so a view
//! keeps, per user, the number of the last event it delivered: an older event for that user is
//! stale and is not delivered. Every other event is delivered, even one older than a client's
//! join (its member list may already reflect it): replaying a user's latest events in order
//! leaves a list as it was, so each client converges. Numbers the view skipped are holes; a
//! hole still open a moment later means an event was lost, and the channel is re-read from
//! core and merged per user ([`View::resync`]), after which anything at or below what was read
//! is stale.
//!
//! Each local client starts from its own join's member list, which may differ from what others
//! here were told while events were being lost. So every join's list is merged into the view
//! too, and a user on whom two lists may disagree is marked unsure: a re-read then tells every
//! client about that user, whichever way it is (a repeated `member_added` leaves a list as it
//! was; pusher-js ignores a `member_removed` of someone it does not list).

use std::collections::{BTreeSet, HashMap, HashSet};

use channel_core::Presence;
use serde::Deserialize;
use switchyard_protocol::frame;
use switchyard_protocol::presence::{self, Member};

/// Holes tracked one by one; beyond this many the view just re-reads the channel.
const MAX_HOLES: usize = 256;

/// One presence channel as this edge's clients know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// The last re-read from core: events at or below it are stale.
    floor: u64,
    /// The highest number seen (at the start, the first join's).
    seq: u64,
    /// Numbers between `floor` and `seq` not seen yet.
    holes: BTreeSet<u64>,
    /// More holes than [`MAX_HOLES`] were opened since the last re-read.
    overflow: bool,
    /// user id → (user_info JSON, number of the last event delivered for it; 0 if none).
    members: HashMap<String, (String, u64)>,
    /// Users removed → number of the removal.
    gone: HashMap<String, u64>,
    /// Users on whom local clients' lists may disagree (see the module's note).
    unsure: HashSet<String>,
}

/// What to do with a membership event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Deliver,
    /// Already reflected: drop it.
    Stale,
    /// Deliver it, then re-read the channel: events before it were missed.
    Gap,
}

/// A membership event, as its frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Added(Member),
    Removed(String),
}

#[derive(Deserialize)]
struct Frame<'a> {
    event: &'a str,
    data: String,
}

#[derive(Deserialize)]
struct Data {
    user_id: String,
    #[serde(default)]
    user_info: Option<Box<serde_json::value::RawValue>>,
}

/// Reads a `member_added` / `member_removed` frame; `None` for anything else.
pub(crate) fn parse_change(frame: &[u8]) -> Option<Change> {
    let frame: Frame = serde_json::from_slice(frame).ok()?;
    let data: Data = serde_json::from_str(&frame.data).ok()?;
    match frame.event {
        "pusher_internal:member_added" => Some(Change::Added(Member {
            user_id: data.user_id,
            user_info: data
                .user_info
                .map_or_else(|| "null".to_owned(), |raw| raw.get().to_owned()),
        })),
        "pusher_internal:member_removed" => Some(Change::Removed(data.user_id)),
        _ => None,
    }
}

impl View {
    pub(crate) fn new(presence: &Presence) -> View {
        View {
            floor: 0,
            seq: presence.seq,
            holes: BTreeSet::new(),
            overflow: false,
            members: presence
                .members
                .iter()
                .map(|m| (m.user_id.clone(), (m.user_info.clone(), 0)))
                .collect(),
            gone: HashMap::new(),
            unsure: HashSet::new(),
        }
    }

    /// Takes in the member list another local client's join returned: users on whom it and
    /// the view disagree, where the view has nothing newer, become unsure (and listed, so a
    /// re-read can take them back).
    pub(crate) fn merge_join(&mut self, presence: &Presence) {
        for m in &presence.members {
            if !self.members.contains_key(&m.user_id) && self.last(&m.user_id) < presence.seq {
                self.members
                    .insert(m.user_id.clone(), (m.user_info.clone(), 0));
                self.unsure.insert(m.user_id.clone());
            }
        }
        let listed: HashSet<&str> = presence
            .members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect();
        for (id, (_, last)) in &self.members {
            if *last < presence.seq && !listed.contains(id.as_str()) {
                self.unsure.insert(id.clone());
            }
        }
    }

    /// The number of the last event delivered for `user_id`.
    fn last(&self, user_id: &str) -> u64 {
        self.members
            .get(user_id)
            .map(|(_, seq)| *seq)
            .or_else(|| self.gone.get(user_id).copied())
            .unwrap_or(0)
    }

    /// Makes the view ask to be re-read (events may have been lost unseen).
    pub(crate) fn force_resync(&mut self) {
        self.overflow = true;
    }

    /// Whether numbers are missing: some event may have been lost.
    pub(crate) fn has_holes(&self) -> bool {
        self.overflow || !self.holes.is_empty()
    }

    /// Applies the event numbered `seq`.
    pub(crate) fn apply(&mut self, seq: u64, change: Option<Change>) -> Verdict {
        let user = match &change {
            Some(Change::Added(m)) => Some(m.user_id.as_str()),
            Some(Change::Removed(id)) => Some(id.as_str()),
            None => None,
        };
        if seq <= self.floor || user.is_some_and(|u| seq <= self.last(u)) {
            return Verdict::Stale;
        }
        match change {
            Some(Change::Added(m)) => {
                self.gone.remove(&m.user_id);
                self.unsure.remove(&m.user_id);
                self.members.insert(m.user_id, (m.user_info, seq));
            }
            Some(Change::Removed(user_id)) => {
                self.members.remove(&user_id);
                self.unsure.remove(&user_id);
                self.gone.insert(user_id, seq);
            }
            None => {}
        }
        self.holes.remove(&seq);
        if seq <= self.seq + 1 {
            self.seq = self.seq.max(seq);
            return Verdict::Deliver;
        }
        if seq - self.seq - 1 + self.holes.len() as u64 > MAX_HOLES as u64 {
            self.overflow = true;
        } else {
            self.holes.extend(self.seq + 1..seq);
        }
        self.seq = seq;
        Verdict::Gap
    }

    /// Merges `now` (read from core after a gap) into the view, user by user: a user whose
    /// last event here is newer than `now` keeps what the view says; every other user takes
    /// what `now` says. Returns the frames that bring a client's list along: removals first,
    /// then additions in join order.
    pub(crate) fn resync(&mut self, channel: &str, now: &Presence) -> Vec<String> {
        if now.seq < self.floor {
            return Vec::new();
        }
        let listed: HashMap<&str, &Member> = now
            .members
            .iter()
            .map(|m| (m.user_id.as_str(), m))
            .collect();
        let mut removed: Vec<String> = self
            .members
            .iter()
            .filter(|(id, (_, seq))| *seq <= now.seq && !listed.contains_key(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        removed.sort();
        let added: Vec<&Member> = now
            .members
            .iter()
            .filter(|m| {
                (!self.members.contains_key(&m.user_id) || self.unsure.contains(&m.user_id))
                    && self.last(&m.user_id) <= now.seq
            })
            .collect();
        let mut frames = Vec::new();
        for user_id in removed {
            self.members.remove(&user_id);
            let data = presence::member_removed_data(&user_id);
            frames.push(frame::channel_event(
                "pusher_internal:member_removed",
                channel,
                &data,
                None,
            ));
        }
        for member in added {
            self.members
                .insert(member.user_id.clone(), (member.user_info.clone(), now.seq));
            let data = presence::member_added_data(member);
            frames.push(frame::channel_event(
                "pusher_internal:member_added",
                channel,
                &data,
                None,
            ));
        }
        self.floor = now.seq;
        self.seq = self.seq.max(now.seq);
        let floor = self.floor;
        self.gone.retain(|_, seq| *seq > floor);
        self.holes.retain(|seq| *seq > floor);
        self.overflow = false;
        self.unsure.clear();
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            user_id: id.into(),
            user_info: format!(r#"{{"name":"{id}"}}"#),
        }
    }

    fn presence(seq: u64, ids: &[&str]) -> Presence {
        Presence {
            members: ids.iter().map(|id| member(id)).collect(),
            seq,
        }
    }

    fn added(id: &str) -> Option<Change> {
        Some(Change::Added(member(id)))
    }

    fn removed(id: &str) -> Option<Change> {
        Some(Change::Removed(id.into()))
    }

    fn ids(view: &View) -> Vec<String> {
        let mut ids: Vec<String> = view.members.keys().cloned().collect();
        ids.sort();
        ids
    }

    #[test]
    fn events_apply_in_order_and_repeats_are_dropped() {
        let mut view = View::new(&presence(3, &["a"]));
        assert_eq!(
            view.apply(3, added("a")),
            Verdict::Deliver,
            "a client that joined before 3 may still need it"
        );
        assert_eq!(view.apply(4, added("b")), Verdict::Deliver);
        assert_eq!(view.apply(5, removed("a")), Verdict::Deliver);
        assert_eq!(ids(&view), ["b"]);
        assert_eq!(view.apply(4, added("b")), Verdict::Stale, "a redelivery");
        assert_eq!(
            view.apply(3, added("a")),
            Verdict::Stale,
            "older than a's removal"
        );
        assert!(!view.has_holes());
    }

    #[test]
    fn events_of_different_users_may_arrive_out_of_order() {
        let mut view = View::new(&presence(1, &["a"]));
        assert_eq!(view.apply(3, added("c")), Verdict::Gap);
        assert_eq!(
            view.apply(2, added("b")),
            Verdict::Deliver,
            "late, not stale"
        );
        assert_eq!(view.apply(4, removed("b")), Verdict::Deliver);
        assert_eq!(
            view.apply(2, added("b")),
            Verdict::Stale,
            "older than b's removal"
        );
        assert_eq!(ids(&view), ["a", "c"]);
    }

    #[test]
    fn a_skipped_number_is_a_gap_until_a_resync() {
        let mut view = View::new(&presence(1, &["a"]));
        assert_eq!(view.apply(3, added("c")), Verdict::Gap);
        assert_eq!(view.apply(4, added("d")), Verdict::Deliver);
        assert!(view.has_holes());
        view.resync("presence-r", &presence(4, &["a", "b", "c", "d"]));
        assert!(!view.has_holes());
        assert_eq!(
            view.apply(2, added("b")),
            Verdict::Stale,
            "below the re-read"
        );
        let mut view = View::new(&presence(1, &[]));
        assert_eq!(view.apply(10_000, added("z")), Verdict::Gap);
        assert!(
            view.has_holes(),
            "too many holes to track still asks for a re-read"
        );
    }

    #[test]
    fn resync_sends_the_difference_as_ordinary_events() {
        // The view missed: a and b left, c and d joined.
        let mut view = View::new(&presence(2, &["a", "b", "x"]));
        let frames = view.resync("presence-r", &presence(6, &["x", "c", "d"]));
        let events: Vec<(String, String)> = frames
            .iter()
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(f).expect("json");
                let data: serde_json::Value =
                    serde_json::from_str(v["data"].as_str().expect("data")).expect("data json");
                (
                    v["event"].as_str().expect("event").to_owned(),
                    data["user_id"].as_str().expect("user_id").to_owned(),
                )
            })
            .collect();
        let e = |event: &str, id: &str| (format!("pusher_internal:{event}"), id.to_owned());
        assert_eq!(
            events,
            [
                e("member_removed", "a"),
                e("member_removed", "b"),
                e("member_added", "c"),
                e("member_added", "d"),
            ]
        );
        assert_eq!(ids(&view), ["c", "d", "x"]);
        assert!(view
            .resync("presence-r", &presence(6, &["x", "c", "d"]))
            .is_empty());
    }

    #[test]
    fn resync_keeps_what_the_view_learned_after_the_snapshot() {
        // The snapshot was read at 5; events 6 (b left) and 7 (e joined) arrived meanwhile.
        let mut view = View::new(&presence(2, &["a", "b"]));
        assert_eq!(view.apply(6, removed("b")), Verdict::Gap);
        assert_eq!(view.apply(7, added("e")), Verdict::Deliver);
        let frames = view.resync("presence-r", &presence(5, &["a", "b", "c"]));
        assert_eq!(frames.len(), 1, "only c is news: {frames:?}");
        assert!(frames[0].contains("member_added") && frames[0].contains("\\\"c\\\""));
        assert_eq!(ids(&view), ["a", "c", "e"]);
    }

    #[test]
    fn clients_that_joined_while_events_were_lost_are_brought_right_too() {
        // The view started from a's join (at 2); b joined at 4 and was told x; x left (5) and
        // y joined (6), and both events were lost.
        let mut view = View::new(&presence(2, &["a"]));
        view.merge_join(&presence(4, &["a", "x", "b"]));
        let frames = view.resync("presence-r", &presence(6, &["a", "b", "y"]));
        let told: Vec<&str> = frames
            .iter()
            .map(|f| {
                if f.contains("member_removed") {
                    "-"
                } else {
                    "+"
                }
            })
            .collect();
        assert_eq!(
            told,
            ["-", "+", "+"],
            "x removed; b and y added: {frames:?}"
        );
        assert!(frames[0].contains("\\\"x\\\""));
        assert_eq!(ids(&view), ["a", "b", "y"]);
    }

    #[test]
    fn frames_core_publishes_parse_back() {
        let m = member("u1");
        let add = frame::channel_event(
            "pusher_internal:member_added",
            "presence-r",
            &presence::member_added_data(&m),
            None,
        );
        assert_eq!(parse_change(add.as_bytes()), Some(Change::Added(m)));
        let remove = frame::channel_event(
            "pusher_internal:member_removed",
            "presence-r",
            &presence::member_removed_data("u1"),
            None,
        );
        assert_eq!(
            parse_change(remove.as_bytes()),
            Some(Change::Removed("u1".into()))
        );
        assert_eq!(parse_change(b"{\"event\":\"x\",\"data\":\"{}\"}"), None);
    }
}
