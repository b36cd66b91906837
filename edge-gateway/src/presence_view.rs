//! What this edge's clients were told about each presence channel's members, kept so that an
//! edge that missed `member_added` / `member_removed` events (a bus outage, a lost publish) can
//! bring every client's list right with ordinary events.
//!
//! Core stamps each membership event with the channel's sequence number. A view applies the
//! events in that order: one at or below its number is stale (already reflected, e.g. in a
//! join's member list) and is not delivered; one beyond the next number means some were
//! missed, and the channel is re-read from core ([`View::resync`]). Applying events that a
//! client's list already reflects only repeats what it knows, so a client that joined later
//! converges too.

use std::collections::HashMap;

use channel_core::Presence;
use serde::Deserialize;
use switchyard_protocol::frame;
use switchyard_protocol::presence::{self, Member};

/// One presence channel as this edge's clients know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    seq: u64,
    /// user id → user_info (raw JSON).
    members: HashMap<String, String>,
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
            seq: presence.seq,
            members: presence
                .members
                .iter()
                .map(|m| (m.user_id.clone(), m.user_info.clone()))
                .collect(),
        }
    }

    /// Applies the event numbered `seq`.
    pub(crate) fn apply(&mut self, seq: u64, change: Option<Change>) -> Verdict {
        if seq <= self.seq {
            return Verdict::Stale;
        }
        match change {
            Some(Change::Added(m)) => {
                self.members.insert(m.user_id, m.user_info);
            }
            Some(Change::Removed(user_id)) => {
                self.members.remove(&user_id);
            }
            None => {}
        }
        let gap = seq > self.seq + 1;
        self.seq = seq;
        if gap {
            Verdict::Gap
        } else {
            Verdict::Deliver
        }
    }

    /// Brings the view to `now` (read from core after a gap); returns the frames that bring a
    /// client's list from the old view to it: removals first, then additions in join order.
    /// Nothing when the view is already as new.
    pub(crate) fn resync(&mut self, channel: &str, now: &Presence) -> Vec<String> {
        if now.seq <= self.seq {
            return Vec::new();
        }
        let mut frames = Vec::new();
        let mut removed: Vec<&String> = self
            .members
            .keys()
            .filter(|id| !now.members.iter().any(|m| m.user_id == **id))
            .collect();
        removed.sort();
        for user_id in removed {
            let data = presence::member_removed_data(user_id);
            frames.push(frame::channel_event(
                "pusher_internal:member_removed",
                channel,
                &data,
                None,
            ));
        }
        for member in &now.members {
            if !self.members.contains_key(&member.user_id) {
                let data = presence::member_added_data(member);
                frames.push(frame::channel_event(
                    "pusher_internal:member_added",
                    channel,
                    &data,
                    None,
                ));
            }
        }
        *self = View::new(now);
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

    #[test]
    fn events_apply_in_order_and_stale_ones_are_dropped() {
        let mut view = View::new(&presence(3, &["a"]));
        assert_eq!(view.apply(3, added("a")), Verdict::Stale);
        assert_eq!(view.apply(4, added("b")), Verdict::Deliver);
        assert_eq!(
            view.apply(5, Some(Change::Removed("a".into()))),
            Verdict::Deliver
        );
        assert_eq!(view, View::new(&presence(5, &["b"])));
        assert_eq!(view.apply(4, added("b")), Verdict::Stale);
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
        assert_eq!(view, View::new(&presence(6, &["x", "c", "d"])));
        assert!(view.resync("presence-r", &presence(6, &["x"])).is_empty());
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
