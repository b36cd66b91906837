//! `pusher:unsubscribe`, and leaving a channel when the connection ends.

use std::sync::Arc;

use crate::hub::Index;
use crate::session::Session;
use crate::Edge;

use super::Reply;

pub(crate) async fn handle(edge: &Arc<Edge>, session: &mut Session, channel: &str) -> Reply {
    leave(edge, session, channel).await;
    Reply::none()
}

/// Removes the socket from `channel` locally, reports the count, and leaves presence.
pub(crate) async fn leave(edge: &Edge, session: &mut Session, channel: &str) {
    let Some(sub) = session.channels.remove(channel) else {
        return;
    };
    let key = session.key(channel);
    edge.hub.remove(Index::Channel, &key, &session.socket_id);
    edge.reporter.mark(&key);
    if sub.presence_user.is_some() {
        let left = edge
            .deps
            .core
            .leave_presence(&session.app.id, channel, &edge.id(), &session.socket_id)
            .await;
        if let Err(e) = left {
            // The edge's lease expiry removes the member if core never hears of this leave.
            tracing::warn!(app_id = %session.app.id, channel, error = %e, "presence leave failed");
        }
    }
}
