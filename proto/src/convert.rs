//! Conversions between the trait's types and the wire messages, and the one mapping of
//! `CoreError` to gRPC status and back.

use channel_core::{ChannelCounts, CoreError};
use switchyard_protocol::presence::Member;
use tonic::{Code, Status};

use crate::v1;

/// Metadata key carrying the member limit of a full presence channel.
const LIMIT_KEY: &str = "sy-presence-limit";

pub fn member_to_wire(m: Member) -> v1::Member {
    v1::Member {
        user_id: m.user_id,
        user_info: m.user_info,
    }
}

pub fn member_from_wire(m: v1::Member) -> Member {
    Member {
        user_id: m.user_id,
        user_info: if m.user_info.is_empty() {
            "null".to_owned()
        } else {
            m.user_info
        },
    }
}

pub fn counts_to_wire(c: ChannelCounts) -> v1::Counts {
    v1::Counts {
        subscription_count: c.subscription_count,
        user_count: c.user_count,
    }
}

pub fn counts_from_wire(c: Option<v1::Counts>) -> ChannelCounts {
    let c = c.unwrap_or_default();
    ChannelCounts {
        subscription_count: c.subscription_count,
        user_count: c.user_count,
    }
}

pub fn error_to_status(e: CoreError) -> Status {
    match e {
        CoreError::PresenceFull(limit) => {
            let mut status = Status::resource_exhausted(e.to_string());
            if let Ok(v) = limit.to_string().parse() {
                status.metadata_mut().insert(LIMIT_KEY, v);
            }
            status
        }
        CoreError::Unavailable(message) => Status::unavailable(message),
    }
}

pub fn status_to_error(s: Status) -> CoreError {
    match s.code() {
        Code::ResourceExhausted => {
            let limit = s
                .metadata()
                .get(LIMIT_KEY)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            CoreError::PresenceFull(limit)
        }
        _ => CoreError::Unavailable(format!("channel-core: {}", s.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_round_trip() {
        let e = status_to_error(error_to_status(CoreError::PresenceFull(100)));
        assert!(matches!(e, CoreError::PresenceFull(100)));
        let e = status_to_error(error_to_status(CoreError::Unavailable("redis down".into())));
        assert!(matches!(e, CoreError::Unavailable(m) if m.contains("redis down")));
    }

    #[test]
    fn empty_user_info_reads_as_null() {
        let m = member_from_wire(v1::Member {
            user_id: "1".into(),
            user_info: String::new(),
        });
        assert_eq!(m.user_info, "null");
    }
}
