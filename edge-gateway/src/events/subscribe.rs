//! `pusher:subscribe`: authorize, join the local index (and the bus on first interest), join
//! presence through core, answer `subscription_succeeded`, replay a cache channel's last event.

use std::sync::Arc;

use switchyard_bus::channel_subject;
use switchyard_protocol::presence::{self, Member};
use switchyard_protocol::{frame, signature, Channel, ChannelKind, CloseCode};
use switchyard_telemetry::trace;
use tracing::Span;

use crate::hub::{self, Index};
use crate::session::{Session, Subscribed};
use crate::Edge;

use super::Reply;

/// Why a subscription was refused: message and HTTP-like status for `subscription_error`.
struct Refusal(String, u16);

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
    let channel = match Channel::parse(&name, session.app.max_channel_name_length) {
        Ok(channel) => channel,
        Err(e) => return refuse(&name, Refusal(e.to_string(), 400)),
    };
    if session.channels.contains_key(&name) {
        return Reply::none();
    }
    let member = match authorize(session, &channel, auth.as_deref(), channel_data.as_deref()) {
        Ok(member) => member,
        Err(refusal) => return refuse(&name, refusal),
    };
    let key = session.key(&name);
    let (local, feed) = edge
        .hub
        .add(Index::Channel, &key, &session.socket_id, &session.peer);
    let subject = channel_subject(&session.app.id, &name);
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
        return refuse(
            &name,
            Refusal("temporarily unavailable, try again".into(), 503),
        );
    }
    let data = match &member {
        None => "{}".to_owned(),
        Some(member) => match join(edge, session, &name, member.clone()).await {
            Ok(data) => data,
            Err(refusal) => {
                edge.hub.remove(Index::Channel, &key, &session.socket_id);
                return refuse(&name, refusal);
            }
        },
    };
    if local == 1 {
        let (hub, core) = (&edge.hub, edge.deps.core.as_ref());
        if !edge.reporter.report_now(&key, &edge.id(), hub, core).await {
            // Still subscribed locally; the background reporter retries the count.
            edge.reporter.mark(&key);
        }
    } else {
        edge.reporter.mark(&key);
    }
    if channel.requires_auth() || channel.kind() == ChannelKind::ServerToUser {
        session.authorized = true;
    }
    session.channels.insert(
        &name,
        Subscribed {
            presence_user: member.map(|m| m.user_id.into()),
        },
    );
    let mut frames = vec![frame::subscription_succeeded(&name, &data)];
    if channel.is_cache() {
        match edge.deps.core.cache_get(&session.app.id, &name).await {
            Ok(Some(cached)) => frames.push(cached.frame),
            Ok(None) => frames.push(frame::cache_miss(&name)),
            Err(e) => tracing::warn!(channel = %name, error = %e, "cache lookup failed"),
        }
    }
    Reply::frames(frames)
}

fn authorize(
    session: &Session,
    channel: &Channel,
    auth: Option<&str>,
    channel_data: Option<&str>,
) -> Result<Option<Member>, Refusal> {
    let app = &session.app;
    let socket_id = &*session.socket_id;
    let check = |message: &str| {
        let token = auth.ok_or_else(|| Refusal("auth is required for this channel".into(), 401))?;
        signature::verify_token(&app.key, app.secret.expose(), token, message)
            .map_err(|e| Refusal(format!("invalid auth: {e}"), 401))
    };
    match channel.kind() {
        ChannelKind::Public => Ok(None),
        ChannelKind::Private | ChannelKind::PrivateEncrypted => {
            check(&signature::channel_string(socket_id, channel.name()))?;
            Ok(None)
        }
        ChannelKind::Presence => {
            let data = channel_data.ok_or_else(|| {
                Refusal("channel_data is required for presence channels".into(), 400)
            })?;
            check(&signature::presence_string(socket_id, channel.name(), data))?;
            presence::parse_channel_data(data, app.max_presence_user_info_bytes)
                .map(Some)
                .map_err(|e| Refusal(e.to_string(), 400))
        }
        ChannelKind::ServerToUser => {
            let signed_in = session.user.as_ref().map(|u| u.id.as_str());
            if signed_in.is_some() && signed_in == channel.server_to_user_id() {
                Ok(None)
            } else {
                Err(Refusal(
                    "only the connection signed in as this user may subscribe".into(),
                    403,
                ))
            }
        }
    }
}

async fn join(
    edge: &Edge,
    session: &Session,
    name: &str,
    member: Member,
) -> Result<String, Refusal> {
    let joined = edge
        .deps
        .core
        .join_presence(
            &session.app.id,
            name,
            &edge.id(),
            &session.socket_id,
            member,
        )
        .await;
    match joined {
        Ok(members) => Ok(presence::subscription_data(&members)),
        Err(channel_core::CoreError::PresenceFull(n)) => Err(Refusal(
            format!("presence channel is full ({n} members)"),
            403,
        )),
        Err(e) => {
            tracing::warn!(channel = name, error = %e, "presence join failed");
            Err(Refusal("temporarily unavailable, try again".into(), 503))
        }
    }
}

fn refuse(channel: &str, Refusal(message, status): Refusal) -> Reply {
    let error_type = if status == 401 {
        "AuthError"
    } else {
        "SubscriptionError"
    };
    // pusher-js surfaces subscription_error on the channel; other clients only watch
    // pusher:error, so both are sent, as Pusher does.
    let code = if status == 401 || status == 403 {
        CloseCode::Unauthorized
    } else {
        CloseCode::GenericError
    };
    Reply {
        rejected: Some("subscription_refused"),
        ..Reply::frames(vec![
            frame::error(code.code(), &format!("{channel}: {message}")),
            frame::subscription_error(channel, error_type, &message, status),
        ])
    }
}
