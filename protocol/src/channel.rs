//! Channel names and the kind of channel a name denotes.

use thiserror::Error;

/// The prefix of channels that carry events to one signed-in user.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// What a channel name says about authorization and delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Public,
    Private,
    PrivateEncrypted,
    Presence,
    ServerToUser,
}

/// A validated channel name with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    name: String,
    kind: ChannelKind,
    cache: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelNameError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is longer than {max} characters")]
    TooLong { max: usize },
    #[error("channel name contains an invalid character: {0:?}")]
    InvalidCharacter(char),
}

impl Channel {
    /// Validates `name` against Pusher's rules: `[A-Za-z0-9_\-=@,.;]`, at most `max_len`
    /// characters, and `#` only as the `#server-to-user-` prefix.
    pub fn parse(name: &str, max_len: usize) -> Result<Channel, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if name.len() > max_len {
            return Err(ChannelNameError::TooLong { max: max_len });
        }
        let (checked, kind, cache) = match name.strip_prefix(SERVER_TO_USER_PREFIX) {
            Some(user) if !user.is_empty() => (user, ChannelKind::ServerToUser, false),
            Some(_) => return Err(ChannelNameError::Empty),
            None => {
                let (kind, cache) = classify(name);
                (name, kind, cache)
            }
        };
        if let Some(bad) = checked.chars().find(|c| !is_name_char(*c)) {
            return Err(ChannelNameError::InvalidCharacter(bad));
        }
        Ok(Channel {
            name: name.to_owned(),
            kind,
            cache,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// Cache channels replay their last event to new subscribers.
    pub fn is_cache(&self) -> bool {
        self.cache
    }

    /// Private, encrypted and presence channels need a signed `auth` to subscribe.
    pub fn requires_auth(&self) -> bool {
        matches!(
            self.kind,
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        )
    }

    /// Client events are allowed on private and presence channels, never on encrypted ones
    /// (the server cannot see inside them, so it must not relay unauthenticated plaintext).
    pub fn allows_client_events(&self) -> bool {
        matches!(self.kind, ChannelKind::Private | ChannelKind::Presence)
    }

    /// For `#server-to-user-<id>` channels, the user id.
    pub fn server_to_user_id(&self) -> Option<&str> {
        match self.kind {
            ChannelKind::ServerToUser => self.name.strip_prefix(SERVER_TO_USER_PREFIX),
            _ => None,
        }
    }
}

fn classify(name: &str) -> (ChannelKind, bool) {
    // Longest prefixes first: `private-encrypted-cache-` is also `private-`.
    const KINDS: [(&str, ChannelKind, bool); 8] = [
        (
            "private-encrypted-cache-",
            ChannelKind::PrivateEncrypted,
            true,
        ),
        ("private-encrypted-", ChannelKind::PrivateEncrypted, false),
        ("private-cache-", ChannelKind::Private, true),
        ("private-", ChannelKind::Private, false),
        ("presence-cache-", ChannelKind::Presence, true),
        ("presence-", ChannelKind::Presence, false),
        ("cache-", ChannelKind::Public, true),
        ("", ChannelKind::Public, false),
    ];
    KINDS
        .iter()
        .find(|(prefix, _, _)| name.starts_with(prefix))
        .map(|(_, kind, cache)| (*kind, *cache))
        .unwrap_or((ChannelKind::Public, false))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> (ChannelKind, bool) {
        let ch = Channel::parse(name, 164).expect("valid name");
        (ch.kind(), ch.is_cache())
    }

    #[test]
    fn prefixes_decide_the_kind() {
        assert_eq!(kind("news"), (ChannelKind::Public, false));
        assert_eq!(kind("cache-news"), (ChannelKind::Public, true));
        assert_eq!(kind("private-a"), (ChannelKind::Private, false));
        assert_eq!(kind("private-cache-a"), (ChannelKind::Private, true));
        assert_eq!(
            kind("private-encrypted-a"),
            (ChannelKind::PrivateEncrypted, false)
        );
        assert_eq!(
            kind("private-encrypted-cache-a"),
            (ChannelKind::PrivateEncrypted, true)
        );
        assert_eq!(kind("presence-a"), (ChannelKind::Presence, false));
        assert_eq!(kind("presence-cache-a"), (ChannelKind::Presence, true));
        assert_eq!(
            kind("#server-to-user-42"),
            (ChannelKind::ServerToUser, false)
        );
    }

    #[test]
    fn names_allow_commas_semicolons_and_dots() {
        assert!(Channel::parse("a,b;c.d=e@f_g-h", 164).is_ok());
    }

    #[test]
    fn invalid_names_are_rejected_with_the_reason() {
        assert_eq!(Channel::parse("", 164), Err(ChannelNameError::Empty));
        assert_eq!(
            Channel::parse("a b", 164),
            Err(ChannelNameError::InvalidCharacter(' '))
        );
        assert_eq!(
            Channel::parse("#other", 164),
            Err(ChannelNameError::InvalidCharacter('#'))
        );
        assert_eq!(
            Channel::parse(&"x".repeat(165), 164),
            Err(ChannelNameError::TooLong { max: 164 })
        );
        assert!(Channel::parse(&"x".repeat(164), 164).is_ok());
        assert_eq!(
            Channel::parse("#server-to-user-", 164),
            Err(ChannelNameError::Empty)
        );
    }

    #[test]
    fn rules_per_kind() {
        let enc = Channel::parse("private-encrypted-x", 164).expect("valid");
        assert!(enc.requires_auth());
        assert!(!enc.allows_client_events());
        let user = Channel::parse("#server-to-user-7", 164).expect("valid");
        assert_eq!(user.server_to_user_id(), Some("7"));
        assert!(!Channel::parse("public", 164)
            .expect("valid")
            .requires_auth());
    }
}
