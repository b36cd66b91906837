//! `pusher:signin`: binds a user to the connection and listens on the user's subject, which
//! carries `terminate_connections`.

use std::sync::Arc;

use switchyard_bus::{user_subject, watch_subject};
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
    if let Err(e) = listen(
        edge,
        session,
        Index::User,
        &user.id,
        user_subject(&session.app.id, &user.id),
    )
    .await
    {
        tracing::warn!(error = %e, "bus subscribe failed");
        return Reply::error(
            CloseCode::GenericError,
            "signin temporarily unavailable, try again",
        );
    }
    for watched in &user.watchlist {
        let subject = watch_subject(&session.app.id, watched);
        if let Err(e) = listen(edge, session, Index::Watch, watched, subject).await {
            tracing::warn!(error = %e, "watchlist subscribe failed");
        }
    }
    let core = &edge.deps.core;
    let (app_id, edge_id) = (session.app.id.clone(), edge.id());
    if let Err(e) = core
        .user_signed_in(&app_id, &user.id, &edge_id, &session.socket_id)
        .await
    {
        tracing::warn!(error = %e, "user online report failed");
    }
    let mut frames = vec![frame::signin_success(user_data)];
    if !user.watchlist.is_empty() {
        match core.online(&app_id, &user.watchlist).await {
            Ok(online) if !online.is_empty() => {
                let ids: Vec<&str> = online.iter().map(String::as_str).collect();
                frames.push(frame::watchlist_event("online", &ids));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watchlist lookup failed"),
        }
    }
    session.user = Some(user);
    session.authorized = true;
    Reply::frames(frames)
}

/// Adds the socket under `id` in `index`, subscribing to `subject` on first local interest.
async fn listen(
    edge: &Arc<Edge>,
    session: &Session,
    index: Index,
    id: &str,
    subject: String,
) -> Result<(), switchyard_bus::BusError> {
    let key = session.key(id);
    let (_, feed) = edge.hub.add(index, &key, &session.socket_id, &session.peer);
    let started = feed
        .get_or_try_init(|| {
            hub::start_feed(
                edge.hub.clone(),
                edge.deps.bus.as_ref(),
                index,
                key.clone(),
                &subject,
            )
        })
        .await;
    if started.is_err() {
        edge.hub.remove(index, &key, &session.socket_id);
    }
    started.map(|_| ())
}

/// Unbinds the connection's user and watchlist when it ends.
pub(crate) async fn sign_out(edge: &Edge, session: &mut Session) {
    let Some(user) = session.user.take() else {
        return;
    };
    edge.hub
        .remove(Index::User, &session.key(&user.id), &session.socket_id);
    for watched in &user.watchlist {
        edge.hub
            .remove(Index::Watch, &session.key(watched), &session.socket_id);
    }
    let left = edge
        .deps
        .core
        .user_signed_out(&session.app.id, &user.id, &edge.id(), &session.socket_id)
        .await;
    if let Err(e) = left {
        tracing::warn!(error = %e, "user offline report failed");
    }
}
