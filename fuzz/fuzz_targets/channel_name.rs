//! Channel names, as they arrive in `pusher:subscribe` and in API requests.
//!
//! Properties: nothing panics; an accepted name is kept as given, obeys Pusher's character and
//! length rules and has the kind and cache flag its prefix says (checked against an independent
//! table), survives a `pusher:subscribe` frame unchanged, and parses again to the same channel;
//! a refusal names the real reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchyard_protocol::channel::SERVER_TO_USER_PREFIX;
use switchyard_protocol::{Channel, ChannelKind, ChannelNameError, ClientFrame};

/// The apps' default `max_channel_name_length`.
const MAX: usize = 164;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    match Channel::parse(name, MAX) {
        Ok(channel) => accepted(name, &channel),
        Err(e) => refused(name, &e),
    }
});

fn accepted(name: &str, channel: &Channel) {
    assert_eq!(channel.name(), name);
    assert!(!name.is_empty() && name.len() <= MAX);
    assert_eq!(Channel::parse(channel.name(), MAX).as_ref(), Ok(channel));
    assert_eq!(Channel::parse(name, name.len()).as_ref(), Ok(channel));
    assert_eq!(
        Channel::parse(name, name.len() - 1),
        Err(ChannelNameError::TooLong {
            max: name.len() - 1
        })
    );

    let (kind, cache) = expected_kind(name);
    assert_eq!((channel.kind(), channel.is_cache()), (kind, cache));
    let user = name.strip_prefix(SERVER_TO_USER_PREFIX);
    assert_eq!(channel.server_to_user_id(), user);
    let checked = user.unwrap_or(name);
    assert!(!checked.is_empty() && checked.chars().all(is_name_char));
    assert_eq!(
        channel.requires_auth(),
        matches!(
            kind,
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        )
    );
    assert_eq!(
        channel.allows_client_events(),
        matches!(kind, ChannelKind::Private | ChannelKind::Presence)
    );

    let frame = json!({"event": "pusher:subscribe", "data": {"channel": name}}).to_string();
    assert_eq!(
        ClientFrame::parse(&frame),
        Ok(ClientFrame::Subscribe {
            channel: name.to_owned(),
            auth: None,
            channel_data: None,
        })
    );
}

fn refused(name: &str, e: &ChannelNameError) {
    match e {
        ChannelNameError::Empty => assert!(name.is_empty() || name == SERVER_TO_USER_PREFIX),
        ChannelNameError::TooLong { max } => assert!(*max == MAX && name.len() > MAX),
        ChannelNameError::InvalidCharacter(c) => {
            assert!(name.len() <= MAX && !is_name_char(*c));
            let checked = name.strip_prefix(SERVER_TO_USER_PREFIX).unwrap_or(name);
            assert!(checked.contains(*c));
        }
    }
}

/// Pusher's prefixes, written out independently of `channel.rs`.
fn expected_kind(name: &str) -> (ChannelKind, bool) {
    let (kind, rest) = if name.starts_with(SERVER_TO_USER_PREFIX) {
        return (ChannelKind::ServerToUser, false);
    } else if let Some(rest) = name.strip_prefix("private-encrypted-") {
        (ChannelKind::PrivateEncrypted, rest)
    } else if let Some(rest) = name.strip_prefix("private-") {
        (ChannelKind::Private, rest)
    } else if let Some(rest) = name.strip_prefix("presence-") {
        (ChannelKind::Presence, rest)
    } else {
        (ChannelKind::Public, name)
    };
    (kind, rest.starts_with("cache-"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-=@,.;".contains(c)
}
