//! Subject names. NATS tokens may not contain `.`, `*`, `>` or whitespace while channel names
//! may contain `.`, so names are escaped reversibly (never hashed: two names must never share
//! a subject).

/// `sy.<app>.ch.<channel>`
pub fn channel_subject(app_id: &str, channel: &str) -> String {
    format!("sy.{}.ch.{}", encode_token(app_id), encode_token(channel))
}

/// Where a changed app's id is announced, so every service drops its cached copy at once.
/// Its first token differs from every app's `sy`, so no app id can reach it.
pub const APPS_CHANGED_SUBJECT: &str = "sy-apps.changed";

/// `sy.<app>.user.<user id>`
pub fn user_subject(app_id: &str, user_id: &str) -> String {
    format!("sy.{}.user.{}", encode_token(app_id), encode_token(user_id))
}

/// `sy.<app>.watch.<user id>`: online/offline events for the user's watchers.
pub fn watch_subject(app_id: &str, user_id: &str) -> String {
    format!(
        "sy.{}.watch.{}",
        encode_token(app_id),
        encode_token(user_id)
    )
}

/// Escapes every byte outside `[A-Za-z0-9_\-=@,;#]` as `~XX` (uppercase hex).
pub fn encode_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_-=@,;#".contains(&b) {
            out.push(b as char);
        } else {
            out.push('~');
            out.push_str(&format!("{b:02X}"));
        }
    }
    if out.is_empty() {
        // An empty token is not a valid subject token.
        out.push('~');
    }
    out
}

/// The inverse of [`encode_token`]; `None` for text it could not have produced.
pub fn decode_token(s: &str) -> Option<String> {
    if s == "~" {
        return Some(String::new());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'~' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_collides() {
        let names = [
            "a.b",
            "a~2Eb",
            "x*y>z",
            "presence-room;1",
            "",
            "é ü",
            "#server-to-user-1",
        ];
        let encoded: Vec<String> = names.iter().map(|n| encode_token(n)).collect();
        for (name, token) in names.iter().zip(&encoded) {
            assert!(!token.contains(['.', '*', '>', ' ']), "{token}");
            assert_eq!(decode_token(token).as_deref(), Some(*name));
        }
        let unique: std::collections::HashSet<&String> = encoded.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn subjects() {
        assert_eq!(
            channel_subject("app-id", "my.chan"),
            "sy.app-id.ch.my~2Echan"
        );
        assert_eq!(user_subject("1", "u"), "sy.1.user.u");
    }
}
