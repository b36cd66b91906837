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

pub(crate) async fn handle(
    edge: &Arc<Edge>,
    session: &mut Session,
    event: &str,
    channel: &str,
    data: RawJson,
) -> Reply {
    let app = session.app.clone();
    let reject = |message: &str| Reply::error(CloseCode::ClientEventRejected, message);
    if !app.enable_client_messages {
        return reject("client events are not enabled for this app");
    }
    if !session
        .client_events
        .allow(Instant::now(), app.client_events_per_second)
    {
        return reject(&format!(
            "client event rate limit of {} per second exceeded",
            app.client_events_per_second
        ));
    }
    let allowed = Channel::parse(channel, app.max_channel_name_length)
        .is_ok_and(|c| c.allows_client_events());
    if !allowed {
        return reject("client events are only allowed on private and presence channels");
    }
    let Some(sub) = session.channels.get(channel) else {
        return reject("client events require a subscription to the channel");
    };
    if event.len() > app.max_event_name_length {
        return reject(&format!(
            "event name is longer than {} characters",
            app.max_event_name_length
        ));
    }
    if data.0.get().len() > app.max_payload_bytes {
        return reject(&format!(
            "event data is larger than {} bytes",
            app.max_payload_bytes
        ));
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
        return Reply::error(
            CloseCode::GenericError,
            "client event could not be delivered, try again",
        );
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
        };
        // Retries must not stall this connection's reads, so they run on their own.
        let queue = edge.deps.webhooks.clone();
        tokio::spawn(async move {
            if let Err(e) = switchyard_webhook::push_with_retry(queue.as_ref(), job).await {
                tracing::error!(error = %e, "client_event webhook enqueue failed; event dropped");
            }
        });
    }
    Reply::none()
}
