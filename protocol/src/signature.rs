//! HMAC-SHA256 signatures for channel authorization, user sign-in and webhooks.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 of `message` keyed with `secret`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    hex::encode(mac(secret, message).finalize().into_bytes())
}

/// Checks a lowercase or uppercase hex signature in constant time.
pub fn verify(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(expected) = hex::decode(signature_hex) else {
        return false;
    };
    mac(secret, message).verify_slice(&expected).is_ok()
}

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac
}

/// The string a private or encrypted channel's auth signs.
pub fn channel_string(socket_id: &str, channel: &str) -> String {
    format!("{socket_id}:{channel}")
}

/// The string a presence channel's auth signs: the exact `channel_data` bytes received.
pub fn presence_string(socket_id: &str, channel: &str, channel_data: &str) -> String {
    format!("{socket_id}:{channel}:{channel_data}")
}

/// The string a `pusher:signin` auth signs: the exact `user_data` bytes received.
pub fn signin_string(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// Why an `auth` token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthTokenError {
    #[error("auth must be of the form <key>:<signature>")]
    Malformed,
    #[error("auth key does not match the application key")]
    WrongKey,
    #[error("invalid signature")]
    BadSignature,
}

/// Verifies a client-supplied `"<key>:<hexsig>"` token over `message`.
pub fn verify_token(
    app_key: &str,
    secret: &str,
    token: &str,
    message: &str,
) -> Result<(), AuthTokenError> {
    let (key, sig) = token.split_once(':').ok_or(AuthTokenError::Malformed)?;
    if key != app_key {
        return Err(AuthTokenError::WrongKey);
    }
    if verify(secret, message.as_bytes(), sig) {
        Ok(())
    } else {
        Err(AuthTokenError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn private_channel_vector() {
        let msg = channel_string("1234.1234", "private-foobar");
        assert_eq!(
            sign(SECRET, msg.as_bytes()),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }

    #[test]
    fn presence_channel_vector() {
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
        let msg = presence_string("1234.1234", "presence-foobar", data);
        assert_eq!(
            sign(SECRET, msg.as_bytes()),
            "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
        );
    }

    #[test]
    fn signin_vector() {
        let msg = signin_string("1234.1234", r#"{"id":"12345"}"#);
        assert_eq!(
            sign(SECRET, msg.as_bytes()),
            "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        );
    }

    #[test]
    fn webhook_vector() {
        let body = r#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#;
        assert_eq!(
            sign(SECRET, body.as_bytes()),
            "c19001ae3963ccb13bf618e5b16ba9848e7e74df0993aa0689168e341c6833cf"
        );
    }

    #[test]
    fn tokens_are_checked_for_key_and_signature() {
        let msg = channel_string("1234.1234", "private-foobar");
        let good = format!("{KEY}:{}", sign(SECRET, msg.as_bytes()));
        assert_eq!(verify_token(KEY, SECRET, &good, &msg), Ok(()));
        assert_eq!(
            verify_token("other", SECRET, &good, &msg),
            Err(AuthTokenError::WrongKey)
        );
        assert_eq!(
            verify_token(KEY, SECRET, &format!("{KEY}:00ff"), &msg),
            Err(AuthTokenError::BadSignature)
        );
        assert_eq!(
            verify_token(KEY, SECRET, &format!("{KEY}:not-hex"), &msg),
            Err(AuthTokenError::BadSignature)
        );
        assert_eq!(
            verify_token(KEY, SECRET, "nocolon", &msg),
            Err(AuthTokenError::Malformed)
        );
    }
}
