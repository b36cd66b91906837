//! One module per client event, each `handle(edge, session, …) -> Reply`; [`dispatch`] is the
//! single match that routes a frame to its handler.

mod client_event;
mod ping;
mod signin;
mod subscribe;
mod unsubscribe;

use std::sync::Arc;

use switchyard_protocol::{frame, ClientFrame, CloseCode, FrameError};
use tracing::Instrument;

use crate::session::Session;
use crate::Edge;

pub(crate) use signin::sign_out;
pub(crate) use unsubscribe::leave;

/// What to send back on this connection, in order, and whether to close it afterwards.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub frames: Vec<String>,
    pub close: Option<CloseCode>,
    /// Why the client's frame was refused, for the rejection metric.
    pub rejected: Option<&'static str>,
}

impl Reply {
    pub fn none() -> Reply {
        Reply::default()
    }

    pub fn frame(frame: String) -> Reply {
        Reply::frames(vec![frame])
    }

    pub fn frames(frames: Vec<String>) -> Reply {
        Reply {
            frames,
            close: None,
            rejected: None,
        }
    }

    /// An error event followed by a close with the same code.
    pub fn fatal(code: CloseCode, message: &str) -> Reply {
        Reply {
            frames: vec![frame::error(code.code(), message)],
            close: Some(code),
            rejected: Some(code.label()),
        }
    }

    /// A `pusher:error` that leaves the connection open.
    pub fn error(code: CloseCode, message: &str) -> Reply {
        Reply {
            rejected: Some(code.label()),
            ..Reply::frame(frame::error(code.code(), message))
        }
    }
}

/// Why a frame was refused before any event's handler saw it.
#[derive(Debug, thiserror::Error)]
enum FrameRefusal {
    #[error("{0}")]
    Malformed(FrameError),
    #[error("unsupported event {0:?}")]
    UnsupportedEvent(String),
}

impl FrameRefusal {
    fn reply(&self) -> Reply {
        let code = match self {
            FrameRefusal::Malformed(_) | FrameRefusal::UnsupportedEvent(_) => {
                CloseCode::GenericError
            }
        };
        Reply::error(code, &self.to_string())
    }
}

pub(crate) async fn dispatch(edge: &Arc<Edge>, session: &mut Session, text: &str) -> Reply {
    let parsed = match ClientFrame::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => return FrameRefusal::Malformed(e).reply(),
    };
    if !matches!(parsed, ClientFrame::Ping | ClientFrame::Pong) {
        refresh_app(edge, session).await;
    }
    match parsed {
        ClientFrame::Ping => ping::handle(),
        ClientFrame::Pong => Reply::none(),
        ClientFrame::Subscribe {
            channel,
            auth,
            channel_data,
        } => {
            let span = subscribe::span(&channel);
            subscribe::handle(edge, session, channel, auth, channel_data)
                .instrument(span)
                .await
        }
        ClientFrame::Unsubscribe { channel } => unsubscribe::handle(edge, session, &channel).await,
        ClientFrame::Signin { auth, user_data } => {
            signin::handle(edge, session, &auth, &user_data).await
        }
        ClientFrame::ClientEvent {
            event,
            channel,
            data,
        } => client_event::handle(edge, session, &event, &channel, data).await,
        ClientFrame::Unknown { event } => FrameRefusal::UnsupportedEvent(event).reply(),
    }
}

/// Picks up changes to the app (a rotated secret, new limits) for the connection's next
/// decision; the store's cache makes this a map lookup. If the store cannot answer, the
/// connection keeps the app as it knew it.
async fn refresh_app(edge: &Edge, session: &mut Session) {
    if let Ok(Some(app)) = edge.deps.apps.by_id(&session.app_id).await {
        if !Arc::ptr_eq(&app, &session.app) {
            session.app = app;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_refusals_are_sent_as_before() {
        let malformed = FrameRefusal::Malformed(FrameError::InvalidJson("eof".into())).reply();
        assert_eq!(
            malformed.frames,
            vec![frame::error(4000, "invalid JSON: eof")]
        );
        let unknown = FrameRefusal::UnsupportedEvent("pusher:bogus".into()).reply();
        assert_eq!(
            unknown.frames,
            vec![frame::error(4000, r#"unsupported event "pusher:bogus""#)]
        );
        for reply in [malformed, unknown] {
            assert_eq!(reply.close, None);
            assert_eq!(reply.rejected, Some("invalid_frame"));
        }
    }
}
