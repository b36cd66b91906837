//! `pusher:unsubscribe`, and leaving a channel when the connection ends.

use std::sync::Arc;

use crate::hub::Index;
use crate::removals::Removal;
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
        let leave = Removal::Leave {
            app_id: session.app_id.clone(),
            channel: channel.into(),
            edge: edge.id(),
            socket_id: session.socket_id.clone(),
        };
        edge.removals.send(leave, edge.deps.core.as_ref()).await;
    }
}
