//! `pusher:subscribe`: authorize, join the local index (and the bus on first interest), join
//! presence through core, answer `subscription_succeeded`, replay a cache channel's last event.

use std::sync::Arc;

use switchyard_bus::channel_subject;
use switchyard_protocol::presence::{self, ChannelDataError, Member};
use switchyard_protocol::signature::{self, AuthTokenError};
use switchyard_protocol::{frame, Channel, ChannelKind, ChannelNameError, CloseCode};
use switchyard_telemetry::trace;
use tracing::Span;

use crate::hub::{self, Index};
use crate::removals::Removal;
use crate::session::{Session, Subscribed};
use crate::Edge;

use super::Reply;

/// Why a subscription was refused, named after the condition. [`SubscribeRefusal::reply`] is
/// the one place that says what the client is sent for each.
#[derive(Debug, thiserror::Error)]
enum SubscribeRefusal {
    #[error("{0}")]
    InvalidChannelName(ChannelNameError),
    #[error("auth is required for this channel")]
    AuthRequired,
    #[error("invalid auth: {0}")]
    InvalidAuth(AuthTokenError),
    #[error("channel_data is required for presence channels")]
    ChannelDataRequired,
    #[error("{0}")]
    InvalidChannelData(ChannelDataError),
    /// A `#server-to-user-` channel of another user, or with no user signed in.
    #[error("only the connection signed in as this user may subscribe")]
    NotThisUser,
    #[error("presence channel is full ({0} members)")]
    PresenceFull(usize),
    /// The bus would not start carrying the channel's events to this edge.
    #[error("temporarily unavailable, try again")]
    BusUnavailable,
    #[error("temporarily unavailable, try again")]
    CoreUnavailable,
}

/// The rejection metric's label of every refused subscription, which dashboards group by; the
/// condition is in the log and the client's frames.
const REFUSED: &str = "subscription_refused";

impl SubscribeRefusal {
    /// The `subscription_error`'s status and type, and the code of the `pusher:error` sent
    /// with it: statuses are HTTP's, as Pusher's auth endpoints answer them.
    fn wire(&self) -> (u16, &'static str, CloseCode) {
        use SubscribeRefusal as R;
        match self {
            R::InvalidChannelName(_) | R::ChannelDataRequired | R::InvalidChannelData(_) => {
                (400, "SubscriptionError", CloseCode::GenericError)
            }
            R::AuthRequired | R::InvalidAuth(_) => (401, "AuthError", CloseCode::Unauthorized),
            R::NotThisUser | R::PresenceFull(_) => {
                (403, "SubscriptionError", CloseCode::Unauthorized)
            }
            R::BusUnavailable | R::CoreUnavailable => {
                (503, "SubscriptionError", CloseCode::GenericError)
            }
        }
    }

    fn reply(&self, channel: &str) -> Reply {
        let (status, error_type, code) = self.wire();
        let message = self.to_string();
        // pusher-js surfaces subscription_error on the channel; other clients only watch
        // pusher:error, so both are sent, as Pusher does.
        Reply {
            rejected: Some(REFUSED),
            ..Reply::frames(vec![
                frame::error(code.code(), &format!("{channel}: {message}")),
                frame::subscription_error(channel, error_type, &message, status),
            ])
        }
    }
}

/// The span of one subscribe: the root of the trace through core and Redis (created only
/// while spans are exported, so a subscribe costs nothing extra otherwise).
pub(crate) fn span(channel: &str) -> Span {
    if !trace::enabled() {
        return Span::none();
    }
    tracing::info_span!("edge.subscribe", otel.kind = "server", channel)
}

pub(crate) async fn handle(
    edge: &Arc<Edge>,
    session: &mut Session,
    name: String,
    auth: Option<String>,
    channel_data: Option<String>,
) -> Reply {
    match subscribe(edge, session, &name, auth, channel_data).await {
        Ok(frames) => Reply::frames(frames),
        Err(refusal) => refusal.reply(&name),
    }
}

/// Subscribes the connection to `name`; the frames answer it (none if it already was).
async fn subscribe(
    edge: &Arc<Edge>,
    session: &mut Session,
    name: &str,
    auth: Option<String>,
    channel_data: Option<String>,
) -> Result<Vec<String>, SubscribeRefusal> {
    let channel = Channel::parse(name, session.app.max_channel_name_length)
        .map_err(SubscribeRefusal::InvalidChannelName)?;
    if session.channels.contains_key(name) {
        return Ok(Vec::new());
    }
    let member = authorize(session, &channel, auth.as_deref(), channel_data.as_deref())?;
    let key = session.key(name);
    let (local, feed) = edge
        .hub
        .add(Index::Channel, &key, &session.socket_id, &session.peer);
    let subject = channel_subject(&session.app.id, name);
    let started = feed
        .get_or_try_init(|| {
            hub::start_feed(
                edge.hub.clone(),
                edge.deps.bus.as_ref(),
                Index::Channel,
                key.clone(),
                &subject,
            )
        })
        .await;
    if let Err(e) = started {
        edge.hub.remove(Index::Channel, &key, &session.socket_id);
        tracing::warn!(error = %e, "bus subscribe failed");
        return Err(SubscribeRefusal::BusUnavailable);
    }
    let data = match &member {
        None => "{}".to_owned(),
        Some(member) => match join(edge, session, name, member.clone()).await {
            Ok(presence) => {
                edge.hub.init_presence(&key, &presence);
                presence::subscription_data(&presence.members)
            }
            Err(refusal) => {
                edge.hub.remove(Index::Channel, &key, &session.socket_id);
                return Err(refusal);
            }
        },
    };
    if local == 1 {
        let (hub, core) = (&edge.hub, edge.deps.core.as_ref());
        let id = edge.id();
        match edge.reporter.report_now(&key, &id, hub, core).await {
            Ok(()) => {}
            Err(channel_core::CoreError::Fenced(_)) => edge.start_afresh(&id),
            // Still subscribed locally; the background reporter retries the count.
            Err(_) => edge.reporter.mark(&key),
        }
    } else {
        edge.reporter.mark(&key);
    }
    if channel.requires_auth() || channel.kind() == ChannelKind::ServerToUser {
        session.authorized = true;
    }
    session.channels.insert(
        name,
        Subscribed {
            presence_user: member.map(|m| m.user_id.into()),
        },
    );
    let mut frames = vec![frame::subscription_succeeded(name, &data)];
    if channel.is_cache() {
        match edge.deps.core.cache_get(&session.app.id, name).await {
            Ok(Some(cached)) => frames.push(cached.frame),
            Ok(None) => frames.push(frame::cache_miss(name)),
            Err(e) => tracing::warn!(channel = %name, error = %e, "cache lookup failed"),
        }
    }
    Ok(frames)
}

fn authorize(
    session: &Session,
    channel: &Channel,
    auth: Option<&str>,
    channel_data: Option<&str>,
) -> Result<Option<Member>, SubscribeRefusal> {
    let app = &session.app;
    let socket_id = &*session.socket_id;
    let check = |message: &str| {
        let token = auth.ok_or(SubscribeRefusal::AuthRequired)?;
        signature::verify_token(&app.key, app.secret.expose(), token, message)
            .map_err(SubscribeRefusal::InvalidAuth)
    };
    match channel.kind() {
        ChannelKind::Public => Ok(None),
        ChannelKind::Private | ChannelKind::PrivateEncrypted => {
            check(&signature::channel_string(socket_id, channel.name()))?;
            Ok(None)
        }
        ChannelKind::Presence => {
            let data = channel_data.ok_or(SubscribeRefusal::ChannelDataRequired)?;
            check(&signature::presence_string(socket_id, channel.name(), data))?;
            presence::parse_channel_data(data, app.max_presence_user_info_bytes)
                .map(Some)
                .map_err(SubscribeRefusal::InvalidChannelData)
        }
        ChannelKind::ServerToUser => {
            let signed_in = session.user.as_ref().map(|u| u.id.as_str());
            if signed_in.is_some() && signed_in == channel.server_to_user_id() {
                Ok(None)
            } else {
                Err(SubscribeRefusal::NotThisUser)
            }
        }
    }
}

async fn join(
    edge: &Edge,
    session: &Session,
    name: &str,
    member: Member,
) -> Result<channel_core::Presence, SubscribeRefusal> {
    use channel_core::CoreError;
    edge.removals
        .forget_leave(&session.app.id, name, &session.socket_id);
    let id = edge.id();
    let joined = edge
        .deps
        .core
        .join_presence(&session.app.id, name, &id, &session.socket_id, member)
        .await;
    match joined {
        Ok(presence) => Ok(presence),
        Err(CoreError::PresenceFull(n)) => Err(SubscribeRefusal::PresenceFull(n)),
        Err(e) => {
            tracing::warn!(channel = name, error = %e, "presence join failed");
            if let CoreError::Fenced(_) = e {
                edge.start_afresh(&id);
            } else {
                // The join may have landed before the call failed (a timeout): take it back,
                // or the member would stay until this edge dies.
                let leave = Removal::Leave {
                    app_id: session.app_id.clone(),
                    channel: name.into(),
                    edge: id,
                    socket_id: session.socket_id.clone(),
                };
                edge.removals.send(leave, edge.deps.core.as_ref()).await;
            }
            Err(SubscribeRefusal::CoreUnavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each refusal sent before refusals were named: the `pusher:error` code, the
    /// `subscription_error` type and status, and the message of both.
    #[test]
    fn each_refusal_is_sent_as_before() {
        use SubscribeRefusal as R;
        let busy = "temporarily unavailable, try again";
        let cases = [
            (
                R::InvalidChannelName(ChannelNameError::Empty),
                4000,
                "SubscriptionError",
                400,
                "channel name is empty",
            ),
            (
                R::AuthRequired,
                4009,
                "AuthError",
                401,
                "auth is required for this channel",
            ),
            (
                R::InvalidAuth(AuthTokenError::BadSignature),
                4009,
                "AuthError",
                401,
                "invalid auth: invalid signature",
            ),
            (
                R::ChannelDataRequired,
                4000,
                "SubscriptionError",
                400,
                "channel_data is required for presence channels",
            ),
            (
                R::InvalidChannelData(ChannelDataError::MissingUserId),
                4000,
                "SubscriptionError",
                400,
                "channel_data must have a string or number user_id",
            ),
            (
                R::NotThisUser,
                4009,
                "SubscriptionError",
                403,
                "only the connection signed in as this user may subscribe",
            ),
            (
                R::PresenceFull(100),
                4009,
                "SubscriptionError",
                403,
                "presence channel is full (100 members)",
            ),
            (R::BusUnavailable, 4000, "SubscriptionError", 503, busy),
            (R::CoreUnavailable, 4000, "SubscriptionError", 503, busy),
        ];
        for (refusal, code, error_type, status, message) in cases {
            let reply = refusal.reply("presence-room");
            let expected = vec![
                frame::error(code, &format!("presence-room: {message}")),
                frame::subscription_error("presence-room", error_type, message, status),
            ];
            assert_eq!(reply.frames, expected, "{refusal:?}");
            assert_eq!(reply.close, None, "{refusal:?}");
            assert_eq!(reply.rejected, Some("subscription_refused"));
        }
    }
}
