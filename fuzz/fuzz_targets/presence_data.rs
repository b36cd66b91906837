//! Presence `channel_data`, exactly as the client sent it (its text is what the auth signed).
//!
//! Properties: nothing panics; only a JSON object is accepted; an accepted member has a non-empty user id of at most 128
//! characters and `user_info` of at most the app's limit, and the three frames built from it
//! (`subscription_succeeded`'s member list, `member_added`, `member_removed`) are JSON that
//! carry the same id and the same `user_info` text.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_protocol::presence::{self, Member, MAX_USER_ID_LEN};

/// The apps' default `max_presence_user_info_bytes`.
const MAX_INFO: usize = 1024;

#[derive(Deserialize)]
struct Added {
    user_id: String,
    user_info: Box<RawValue>,
}

#[derive(Deserialize)]
struct Removed {
    user_id: String,
}

#[derive(Deserialize)]
struct Succeeded {
    presence: Presence,
}

#[derive(Deserialize)]
struct Presence {
    ids: Vec<String>,
    hash: HashMap<String, Box<RawValue>>,
    count: usize,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(member) = presence::parse_channel_data(text, MAX_INFO) else {
        return;
    };
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .chars()
        .next();
    assert_eq!(
        first,
        Some('{'),
        "accepted channel_data that is not an object"
    );
    assert!(!member.user_id.is_empty());
    assert!(member.user_id.chars().count() <= MAX_USER_ID_LEN);
    assert!(member.user_info.len() <= MAX_INFO);

    let added: Added = parse(&presence::member_added_data(&member));
    assert_eq!(added.user_id, member.user_id);
    assert_eq!(added.user_info.get(), member.user_info);

    let removed: Removed = parse(&presence::member_removed_data(&member.user_id));
    assert_eq!(removed.user_id, member.user_id);

    let other = Member {
        user_id: format!("{}-other", member.user_id),
        user_info: "null".into(),
    };
    let list: Succeeded = parse(&presence::subscription_data([&member, &other]));
    let p = list.presence;
    assert_eq!(p.ids, [member.user_id.clone(), other.user_id.clone()]);
    assert_eq!(p.count, 2);
    assert_eq!(p.hash.len(), 2);
    assert_eq!(p.hash[&member.user_id].get(), member.user_info);
});

fn parse<'a, T: Deserialize<'a>>(json: &'a str) -> T {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not the expected JSON ({e}): {json}"))
}
