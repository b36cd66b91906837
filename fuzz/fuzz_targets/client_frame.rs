//! A client's text frame, as the edge hands it to `ClientFrame::parse`, and everything the edge
//! parses out of it next: the channel name, presence `channel_data`, sign-in `user_data`, the
//! `auth` token, and the relayed client event.
//!
//! Properties: nothing panics; only JSON objects are accepted, for the frame, its `data` (or the
//! string holding it) and sign-in `user_data` (serde's derived `Deserialize` would take arrays);
//! a parsed frame re-encoded as a plain pusher-js frame parses back to the same frame (so the
//! object-or-string `data` forms and the exact `channel_data` / `user_data` text the signatures
//! cover survive); a token verifies only if it is the real signature; a relayed client event is
//! JSON carrying the same event, channel and data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchyard_protocol::frame::{self, ClientFrame};
use switchyard_protocol::{presence, signature, user, Channel};

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
const SOCKET_ID: &str = "1234.5678";

fuzz_target!(|data: &[u8]| {
    // tungstenite passes only text frames that are valid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = ClientFrame::parse(text) else {
        return;
    };
    assert!(is_object(text), "accepted a frame that is not an object");
    let encoded = encode(&parsed);
    assert_eq!(
        ClientFrame::parse(&encoded).as_ref(),
        Ok(&parsed),
        "re-encoded as {encoded}"
    );
    if matches!(
        parsed,
        ClientFrame::Subscribe { .. }
            | ClientFrame::Unsubscribe { .. }
            | ClientFrame::Signin { .. }
    ) {
        assert!(data_is_object(text), "accepted data that is not an object");
    }
    match &parsed {
        ClientFrame::Subscribe {
            channel,
            auth,
            channel_data,
        } => {
            let _ = Channel::parse(channel, 164);
            let message = match channel_data {
                Some(data) => {
                    let _ = presence::parse_channel_data(data, 1024);
                    signature::presence_string(SOCKET_ID, channel, data)
                }
                None => signature::channel_string(SOCKET_ID, channel),
            };
            if let Some(token) = auth {
                check_token(token, &message);
            }
        }
        ClientFrame::Signin { auth, user_data } => {
            if user::parse_user_data(user_data).is_ok() {
                assert!(
                    is_object(user_data),
                    "accepted user_data that is not an object"
                );
            }
            check_token(auth, &signature::signin_string(SOCKET_ID, user_data));
        }
        ClientFrame::ClientEvent {
            event,
            channel,
            data,
        } => check_relay(event, channel, data.0.get()),
        ClientFrame::Ping
        | ClientFrame::Pong
        | ClientFrame::Unsubscribe { .. }
        | ClientFrame::Unknown { .. } => {}
    }
});

/// JSON whitespace, then `{`.
fn is_object(text: &str) -> bool {
    text.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

/// The frame's `data` is an object, or a string whose content is one.
fn data_is_object(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        data: Option<&'a RawValue>,
    }
    let Ok(Data { data: Some(data) }) = serde_json::from_str::<Data<'_>>(text) else {
        return false;
    };
    match serde_json::from_str::<String>(data.get()) {
        Ok(inner) => is_object(&inner),
        Err(_) => is_object(data.get()),
    }
}

/// The frame as pusher-js sends it: `data` an object, `channel_data`/`user_data` strings.
fn encode(f: &ClientFrame) -> String {
    let v = match f {
        ClientFrame::Ping => json!({"event": "pusher:ping", "data": {}}),
        ClientFrame::Pong => json!({"event": "pusher:pong", "data": {}}),
        ClientFrame::Subscribe {
            channel,
            auth,
            channel_data,
        } => {
            let mut data = json!({"channel": channel});
            if let Some(auth) = auth {
                data["auth"] = json!(auth);
            }
            if let Some(channel_data) = channel_data {
                data["channel_data"] = json!(channel_data);
            }
            json!({"event": "pusher:subscribe", "data": data})
        }
        ClientFrame::Unsubscribe { channel } => {
            json!({"event": "pusher:unsubscribe", "data": {"channel": channel}})
        }
        ClientFrame::Signin { auth, user_data } => {
            json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
        }
        // The raw data text goes in verbatim: a `Value` could not hold every number it may have.
        ClientFrame::ClientEvent {
            event,
            channel,
            data,
        } => {
            return format!(
                r#"{{"event":{},"channel":{},"data":{}}}"#,
                json!(event),
                json!(channel),
                data.0.get()
            )
        }
        ClientFrame::Unknown { event } => json!({"event": event}),
    };
    v.to_string()
}

/// `verify_token` accepts only `<key>:<HMAC-SHA256 hex of message>`, in either hex case.
fn check_token(token: &str, message: &str) {
    if signature::verify_token(KEY, SECRET, token, message).is_ok() {
        let expected = signature::sign(SECRET, message.as_bytes());
        let (key, sig) = token.split_once(':').expect("a verified token has a colon");
        assert_eq!(key, KEY);
        assert_eq!(sig.to_ascii_lowercase(), expected);
    }
}

/// What `edge-gateway/src/events/client_event.rs` publishes: `data` as a JSON string, a string
/// as it came and any other JSON value as its text.
fn check_relay(event: &str, channel: &str, raw: &str) {
    let data = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned());
    let out = frame::channel_event(event, channel, &data, Some("user-1"));
    let v: Value = serde_json::from_str(&out).expect("a relayed client event is JSON");
    assert_eq!(v["event"], event);
    assert_eq!(v["channel"], channel);
    assert_eq!(v["data"], data.as_str());
    assert_eq!(v["user_id"], "user-1");
}
