//! `pusher:ping` → `pusher:pong`. Any inbound frame already counts as activity.

use switchyard_protocol::frame;

use super::Reply;

pub(crate) fn handle() -> Reply {
    Reply::frame(frame::pong())
}
