//! `client-*` events: checked against every rule, then published on the channel's subject with
//! the sender excluded.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use switchyard_bus::{channel_subject, Envelope};
use switchyard_protocol::frame::{self, RawJson};
use switchyard_protocol::{Channel, CloseCode};
use switchyard_webhook::{WebhookEvent, WebhookJob};

use crate::session::Session;
use crate::Edge;

use super::Reply;

/// Why a client event was refused, named after the condition. [`ClientEventRefusal::reply`]
/// is the one place that says what the client is sent for each; the rejection metric counts
/// it under that code's label.
#[derive(Debug, thiserror::Error)]
enum ClientEventRefusal {
    #[error("client events are not enabled for this app")]
    NotEnabled,
    #[error("client event rate limit of {0} per second exceeded")]
    RateLimited(u32),
    #[error("client events are only allowed on private and presence channels")]
    ChannelNotAllowed,
    #[error("client events require a subscription to the channel")]
    NotSubscribed,
    #[error("event name is longer than {0} characters")]
    EventNameTooLong(usize),
    #[error("event data is larger than {0} bytes")]
    DataTooLarge(usize),
    /// The bus would not take the event; the client may send it again.
    #[error("client event could not be delivered, try again")]
    BusUnavailable,
}

impl ClientEventRefusal {
    fn reply(&self) -> Reply {
        use ClientEventRefusal as R;
        let code = match self {
            R::NotEnabled
            | R::RateLimited(_)
            | R::ChannelNotAllowed
            | R::NotSubscribed
            | R::EventNameTooLong(_)
            | R::DataTooLarge(_) => CloseCode::ClientEventRejected,
            // Not the client's doing: 4301 would tell it the event itself was at fault.
            R::BusUnavailable => CloseCode::GenericError,
        };
        Reply::error(code, &self.to_string())
    }
}

pub(crate) async fn handle(
    edge: &Arc<Edge>,
    session: &mut Session,
    event: &str,
    channel: &str,
    data: RawJson,
) -> Reply {
    match relay(edge, session, event, channel, data).await {
        Ok(()) => Reply::none(),
        Err(refusal) => refusal.reply(),
    }
}

async fn relay(
    edge: &Arc<Edge>,
    session: &mut Session,
    event: &str,
    channel: &str,
    data: RawJson,
) -> Result<(), ClientEventRefusal> {
    use ClientEventRefusal as R;
    let app = session.app.clone();
    if !app.enable_client_messages {
        return Err(R::NotEnabled);
    }
    if !session
        .client_events
        .allow(Instant::now(), app.client_events_per_second)
    {
        return Err(R::RateLimited(app.client_events_per_second));
    }
    let allowed = Channel::parse(channel, app.max_channel_name_length)
        .is_ok_and(|c| c.allows_client_events());
    if !allowed {
        return Err(R::ChannelNotAllowed);
    }
    let Some(sub) = session.channels.get(channel) else {
        return Err(R::NotSubscribed);
    };
    if event.len() > app.max_event_name_length {
        return Err(R::EventNameTooLong(app.max_event_name_length));
    }
    if data.0.get().len() > app.max_payload_bytes {
        return Err(R::DataTooLarge(app.max_payload_bytes));
    }
    let user_id = sub.presence_user.as_deref();
    // Relayed as a JSON string like every server-sent `data`: a string as it came, any other
    // JSON value as its text.
    let text = data.0.get();
    let data = serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned());
    let out = frame::channel_event(event, channel, &data, user_id);
    let envelope = Envelope::frame(out, Some(session.socket_id.to_string()));
    if let Err(e) = edge
        .deps
        .bus
        .publish(&channel_subject(&app.id, channel), envelope)
        .await
    {
        tracing::warn!(channel, error = %e, "client event publish failed");
        return Err(R::BusUnavailable);
    }
    if !app.webhooks.is_empty() {
        let job = WebhookJob {
            app_id: app.id.clone(),
            event: WebhookEvent::ClientEvent {
                channel: channel.to_owned(),
                event: event.to_owned(),
                data,
                socket_id: session.socket_id.to_string(),
                user_id: user_id.map(str::to_owned),
            },
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            only_url: None,
            id: None,
        };
        // Retries must not stall this connection's reads, so they run on their own.
        let queue = edge.deps.webhooks.clone();
        tokio::spawn(async move {
            if let Err(e) = switchyard_webhook::push_with_retry(queue.as_ref(), job).await {
                tracing::error!(error = %e, "client_event webhook enqueue failed; event dropped");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each refusal sent before refusals were named: the code, the message, and the
    /// metric label; none closes the connection.
    #[test]
    fn each_refusal_is_sent_as_before() {
        use ClientEventRefusal as R;
        let rejected = (4301, "client_event_rejected");
        let cases = [
            (
                R::NotEnabled,
                rejected,
                "client events are not enabled for this app",
            ),
            (
                R::RateLimited(10),
                rejected,
                "client event rate limit of 10 per second exceeded",
            ),
            (
                R::ChannelNotAllowed,
                rejected,
                "client events are only allowed on private and presence channels",
            ),
            (
                R::NotSubscribed,
                rejected,
                "client events require a subscription to the channel",
            ),
            (
                R::EventNameTooLong(200),
                rejected,
                "event name is longer than 200 characters",
            ),
            (
                R::DataTooLarge(10240),
                rejected,
                "event data is larger than 10240 bytes",
            ),
            (
                R::BusUnavailable,
                (4000, "invalid_frame"),
                "client event could not be delivered, try again",
            ),
        ];
        for (refusal, (code, label), message) in cases {
            let reply = refusal.reply();
            assert_eq!(
                reply.frames,
                vec![frame::error(code, message)],
                "{refusal:?}"
            );
            assert_eq!(reply.close, None, "{refusal:?}");
            assert_eq!(reply.rejected, Some(label), "{refusal:?}");
        }
    }
}
