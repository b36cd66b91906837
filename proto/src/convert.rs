//! Conversions between the core traits' types and the wire messages ([`Arg`] for arguments,
//! [`Reply`] for results), and the one mapping of `CoreError` to gRPC status and back.

use channel_core::{CachedEvent, ChannelCounts, CoreError, CountReport, Presence, Quota};
use switchyard_protocol::presence::Member;
use tonic::{Code, Status};

use crate::v1;

/// Metadata key carrying the member limit of a full presence channel.
const LIMIT_KEY: &str = "sy-presence-limit";

fn member_to_wire(m: Member) -> v1::Member {
    v1::Member {
        user_id: m.user_id,
        user_info: m.user_info,
    }
}

fn member_from_wire(m: v1::Member) -> Member {
    Member {
        user_id: m.user_id,
        user_info: if m.user_info.is_empty() {
            "null".to_owned()
        } else {
            m.user_info
        },
    }
}

fn counts_to_wire(c: ChannelCounts) -> v1::Counts {
    v1::Counts {
        subscription_count: c.subscription_count,
        user_count: c.user_count,
    }
}

fn counts_from_wire(c: Option<v1::Counts>) -> ChannelCounts {
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
        CoreError::Fenced(edge) => Status::failed_precondition(edge),
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
        // The message is the edge's id (see `error_to_status`).
        Code::FailedPrecondition => CoreError::Fenced(s.message().to_owned()),
        _ => CoreError::Unavailable(format!("channel-core: {}", s.message())),
    }
}

/// One argument of a core operation as it crosses the wire: the client turns it into its
/// request field, the server takes it back out of that field (borrowing where the trait takes
/// a reference, moving otherwise, so nothing is copied twice).
pub trait Arg<'a>: Sized {
    type Wire;
    fn to_wire(self) -> Self::Wire;
    fn from_wire(wire: &'a mut Self::Wire) -> Result<Self, Status>;
}

impl<'a> Arg<'a> for &'a str {
    type Wire = String;
    fn to_wire(self) -> String {
        self.to_owned()
    }
    fn from_wire(wire: &'a mut String) -> Result<Self, Status> {
        Ok(wire.as_str())
    }
}

impl<'a> Arg<'a> for &'a [String] {
    type Wire = Vec<String>;
    fn to_wire(self) -> Vec<String> {
        self.to_vec()
    }
    fn from_wire(wire: &'a mut Vec<String>) -> Result<Self, Status> {
        Ok(wire.as_slice())
    }
}

impl Arg<'_> for String {
    type Wire = String;
    fn to_wire(self) -> String {
        self
    }
    fn from_wire(wire: &mut String) -> Result<Self, Status> {
        Ok(std::mem::take(wire))
    }
}

impl Arg<'_> for u64 {
    type Wire = u64;
    fn to_wire(self) -> u64 {
        self
    }
    fn from_wire(wire: &mut u64) -> Result<Self, Status> {
        Ok(*wire)
    }
}

impl Arg<'_> for Member {
    type Wire = Option<v1::Member>;
    fn to_wire(self) -> Option<v1::Member> {
        Some(member_to_wire(self))
    }
    fn from_wire(wire: &mut Option<v1::Member>) -> Result<Self, Status> {
        Ok(member_from_wire(wire.take().unwrap_or_default()))
    }
}

impl Arg<'_> for Quota {
    type Wire = String;
    fn to_wire(self) -> String {
        self.as_str().to_owned()
    }
    fn from_wire(wire: &mut String) -> Result<Self, Status> {
        Quota::parse(wire)
            .ok_or_else(|| Status::invalid_argument(format!("unknown quota {wire:?}")))
    }
}

impl Arg<'_> for Vec<CountReport> {
    type Wire = Vec<v1::CountReport>;
    fn to_wire(self) -> Vec<v1::CountReport> {
        self.into_iter()
            .map(|r| v1::CountReport {
                app_id: r.app_id,
                channel: r.channel,
                count: r.count,
            })
            .collect()
    }
    fn from_wire(wire: &mut Vec<v1::CountReport>) -> Result<Self, Status> {
        Ok(std::mem::take(wire)
            .into_iter()
            .map(|r| CountReport {
                app_id: r.app_id,
                channel: r.channel,
                count: r.count,
            })
            .collect())
    }
}

/// The result of a core operation as it crosses the wire, as its reply message `W`.
pub trait Reply<W>: Sized {
    fn to_wire(self) -> W;
    fn from_wire(wire: W) -> Self;
}

impl Reply<v1::Empty> for () {
    fn to_wire(self) -> v1::Empty {
        v1::Empty {}
    }
    fn from_wire(_: v1::Empty) -> Self {}
}

impl Reply<v1::MembersReply> for Vec<Member> {
    fn to_wire(self) -> v1::MembersReply {
        v1::MembersReply {
            members: self.into_iter().map(member_to_wire).collect(),
            seq: 0,
        }
    }
    fn from_wire(wire: v1::MembersReply) -> Self {
        wire.members.into_iter().map(member_from_wire).collect()
    }
}

impl Reply<v1::MembersReply> for Presence {
    fn to_wire(self) -> v1::MembersReply {
        v1::MembersReply {
            members: self.members.into_iter().map(member_to_wire).collect(),
            seq: self.seq,
        }
    }
    fn from_wire(wire: v1::MembersReply) -> Self {
        Presence {
            members: wire.members.into_iter().map(member_from_wire).collect(),
            seq: wire.seq,
        }
    }
}

impl Reply<v1::Counts> for ChannelCounts {
    fn to_wire(self) -> v1::Counts {
        counts_to_wire(self)
    }
    fn from_wire(wire: v1::Counts) -> Self {
        counts_from_wire(Some(wire))
    }
}

impl Reply<v1::ChannelsReply> for Vec<(String, ChannelCounts)> {
    fn to_wire(self) -> v1::ChannelsReply {
        v1::ChannelsReply {
            channels: self
                .into_iter()
                .map(|(channel, counts)| v1::ChannelCounts {
                    channel,
                    counts: Some(counts_to_wire(counts)),
                })
                .collect(),
        }
    }
    fn from_wire(wire: v1::ChannelsReply) -> Self {
        wire.channels
            .into_iter()
            .map(|c| (c.channel, counts_from_wire(c.counts)))
            .collect()
    }
}

impl Reply<v1::CacheGetReply> for Option<CachedEvent> {
    fn to_wire(self) -> v1::CacheGetReply {
        match self {
            Some(c) => v1::CacheGetReply {
                frame: Some(c.frame),
                ttl_secs: c.ttl_secs,
            },
            None => v1::CacheGetReply::default(),
        }
    }
    fn from_wire(wire: v1::CacheGetReply) -> Self {
        let ttl_secs = wire.ttl_secs;
        wire.frame.map(|frame| CachedEvent { frame, ttl_secs })
    }
}

impl Reply<v1::OnlineReply> for Vec<String> {
    fn to_wire(self) -> v1::OnlineReply {
        v1::OnlineReply { user_ids: self }
    }
    fn from_wire(wire: v1::OnlineReply) -> Self {
        wire.user_ids
    }
}

/// The yes/no replies, each its own message so a field can be added to one later.
macro_rules! bool_reply {
    ($($message:ident . $field:ident),*) => {$(
        impl Reply<v1::$message> for bool {
            fn to_wire(self) -> v1::$message {
                v1::$message { $field: self }
            }
            fn from_wire(wire: v1::$message) -> Self {
                wire.$field
            }
        }
    )*};
}

bool_reply!(
    HeartbeatReply.live,
    AdmitConnectionReply.admitted,
    TakeQuotaReply.taken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_round_trip() {
        let e = status_to_error(error_to_status(CoreError::PresenceFull(100)));
        assert!(matches!(e, CoreError::PresenceFull(100)));
        let e = status_to_error(error_to_status(CoreError::Fenced("edge-1".into())));
        assert!(matches!(e, CoreError::Fenced(edge) if edge == "edge-1"));
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
