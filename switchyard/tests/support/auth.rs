//! Channel and sign-in auth signatures for the main app.

use switchyard_protocol::signature::{channel_string, presence_string, sign, signin_string};

use super::{KEY, SECRET};

pub fn token(secret: &str, key: &str, message: &str) -> String {
    format!("{key}:{}", sign(secret, message.as_bytes()))
}

pub fn private_auth(socket_id: &str, channel: &str) -> String {
    token(SECRET, KEY, &channel_string(socket_id, channel))
}

pub fn presence_auth(socket_id: &str, channel: &str, channel_data: &str) -> String {
    token(
        SECRET,
        KEY,
        &presence_string(socket_id, channel, channel_data),
    )
}

pub fn signin_auth(socket_id: &str, user_data: &str) -> String {
    token(SECRET, KEY, &signin_string(socket_id, user_data))
}
