//! `pusher:signin`: binds a user to the connection and listens on the user's subject, which
//! carries `terminate_connections`.

use std::sync::Arc;

use switchyard_bus::user_subject;
use switchyard_protocol::user::{self, UserDataError};
use switchyard_protocol::{frame, signature, CloseCode};

use crate::hub::{self, Index};
use crate::session::Session;
use crate::Edge;

use super::Reply;

pub(crate) async fn handle(
    edge: &Arc<Edge>,
    session: &mut Session,
    auth: &str,
    user_data: &str,
) -> Reply {
    let app = &session.app;
    let message = signature::signin_string(&session.socket_id, user_data);
    if let Err(e) = signature::verify_token(&app.key, app.secret.expose(), auth, &message) {
        return Reply::fatal(CloseCode::Unauthorized, &format!("signin failed: {e}"));
    }
    let user = match user::parse_user_data(user_data) {
        Ok(user) => user,
        Err(UserDataError::WatchlistTooLarge) => {
            return Reply::error(
                CloseCode::WatchlistTooLarge,
                &UserDataError::WatchlistTooLarge.to_string(),
            )
        }
        Err(e) => return Reply::fatal(CloseCode::Unauthorized, &format!("signin failed: {e}")),
    };
    match &session.user {
        Some(current) if current.id != user.id => {
            return Reply::fatal(
                CloseCode::Unauthorized,
                "connection is already signed in as another user",
            )
        }
        Some(_) => return Reply::frame(frame::signin_success(user_data)),
        None => {}
    }
    let key = session.key(&user.id);
    let (_, feed) = edge
        .hub
        .add(Index::User, &key, &session.socket_id, &session.peer);
    let subject = user_subject(&session.app.id, &user.id);
    let started = feed
        .get_or_try_init(|| {
            hub::start_feed(
                edge.hub.clone(),
                edge.deps.bus.as_ref(),
                Index::User,
                key.clone(),
                &subject,
            )
        })
        .await;
    if let Err(e) = started {
        edge.hub.remove(Index::User, &key, &session.socket_id);
        tracing::warn!(error = %e, "bus subscribe failed");
        return Reply::error(
            CloseCode::GenericError,
            "signin temporarily unavailable, try again",
        );
    }
    session.user = Some(user);
    session.authorized = true;
    Reply::frame(frame::signin_success(user_data))
}

/// Unbinds the connection's user when it ends.
pub(crate) fn sign_out(edge: &Edge, session: &mut Session) {
    if let Some(user) = session.user.take() {
        edge.hub
            .remove(Index::User, &session.key(&user.id), &session.socket_id);
    }
}
