//! What this edge's clients were told about each presence channel's members, kept so that an
//! edge that missed `member_added` / `member_removed` events (a bus outage, a lost publish) can
//! bring every client's list right with ordinary events.
//!
//! Core stamps each membership event with the channel's sequence number. Events may arrive out
//! of order (two core replicas relay them side by side) or twice (a relay retried), so a view
//! keeps, per user, the number of the last event it applied: an older event for that user is
//! stale and not delivered, and so is any event at or below the snapshot the view was built
//! from (a join's member list already reflects it). A number beyond the next one may mean an
//! event was lost, so the channel is re-read from core and merged per user
//! ([`View::resync`]). Delivering an event a client already reflects only repeats what it
//! knows, so a client that joined later converges too.

use std::collections::HashMap;

use channel_core::Presence;
use serde::Deserialize;
use switchyard_protocol::frame;
use switchyard_protocol::presence::{self, Member};

/// One presence channel as this edge's clients know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// The snapshot the view was last built from or merged with: events at or below it are
    /// already reflected.
    floor: u64,
    /// The highest number applied.
    seq: u64,
    /// user id → (user_info JSON, number of the event that added it; the floor for users of
    /// a snapshot).
    members: HashMap<String, (String, u64)>,
    /// Users removed since the floor → number of the removal.
    gone: HashMap<String, u64>,
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
            floor: presence.seq,
            seq: presence.seq,
            members: presence
                .members
                .iter()
                .map(|m| (m.user_id.clone(), (m.user_info.clone(), presence.seq)))
                .collect(),
            gone: HashMap::new(),
        }
    }

    /// The number of the last event applied for `user_id`.
    fn last(&self, user_id: &str) -> u64 {
        self.members
            .get(user_id)
            .map(|(_, seq)| *seq)
            .or_else(|| self.gone.get(user_id).copied())
            .unwrap_or(self.floor)
    }

    /// Applies the event numbered `seq`.
    pub(crate) fn apply(&mut self, seq: u64, change: Option<Change>) -> Verdict {
        if seq <= self.floor {
            return Verdict::Stale;
        }
        match change {
            Some(Change::Added(m)) => {
                if seq <= self.last(&m.user_id) {
                    return Verdict::Stale;
                }
                self.gone.remove(&m.user_id);
                self.members.insert(m.user_id, (m.user_info, seq));
            }
            Some(Change::Removed(user_id)) => {
                if seq <= self.last(&user_id) {
                    return Verdict::Stale;
                }
                self.members.remove(&user_id);
                self.gone.insert(user_id, seq);
            }
            None => {}
        }
        let gap = seq > self.seq + 1;
        self.seq = self.seq.max(seq);
        if gap {
            Verdict::Gap
        } else {
            Verdict::Deliver
        }
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
            .filter(|m| !self.members.contains_key(&m.user_id) && self.last(&m.user_id) <= now.seq)
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
    fn events_apply_in_order_and_stale_ones_are_dropped() {
        let mut view = View::new(&presence(3, &["a"]));
        assert_eq!(view.apply(3, added("a")), Verdict::Stale, "in the snapshot");
        assert_eq!(view.apply(2, removed("z")), Verdict::Stale, "before it");
        assert_eq!(view.apply(4, added("b")), Verdict::Deliver);
        assert_eq!(view.apply(5, removed("a")), Verdict::Deliver);
        assert_eq!(ids(&view), ["b"]);
        assert_eq!(view.apply(4, added("b")), Verdict::Stale, "a redelivery");
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
    fn a_skipped_number_is_a_gap() {
        let mut view = View::new(&presence(1, &["a"]));
        assert_eq!(view.apply(3, added("c")), Verdict::Gap);
        assert_eq!(view.apply(4, added("d")), Verdict::Deliver);
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
