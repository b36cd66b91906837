//! `pusher:signin`: binds a user to the connection and listens on the user's subject, which
//! carries `terminate_connections`.

use std::sync::Arc;

use switchyard_bus::{user_subject, watch_subject};
use switchyard_protocol::signature::{self, AuthTokenError};
use switchyard_protocol::user::{self, UserDataError};
use switchyard_protocol::{frame, CloseCode};

use crate::hub::{self, Index};
use crate::removals::Removal;
use crate::session::Session;
use crate::Edge;

use super::Reply;

/// Why a signin was refused, named after the condition. [`SigninRefusal::reply`] is the one
/// place that says what the client is sent for each; the rejection metric counts it under
/// that code's label.
#[derive(Debug, thiserror::Error)]
enum SigninRefusal {
    #[error("signin failed: {0}")]
    InvalidAuth(AuthTokenError),
    /// Any `user_data` error but a long watchlist (see the `From` below).
    #[error("signin failed: {0}")]
    InvalidUserData(UserDataError),
    #[error("{}", UserDataError::WatchlistTooLarge)]
    WatchlistTooLarge,
    #[error("connection is already signed in as another user")]
    SignedInAsAnother,
    /// The bus would not start carrying the user's events to this edge.
    #[error("signin temporarily unavailable, try again")]
    BusUnavailable,
}

impl From<UserDataError> for SigninRefusal {
    fn from(e: UserDataError) -> Self {
        match e {
            // Pusher has a code of its own for this one, and does not close the connection.
            UserDataError::WatchlistTooLarge => SigninRefusal::WatchlistTooLarge,
            e @ (UserDataError::InvalidJson(_) | UserDataError::MissingId) => {
                SigninRefusal::InvalidUserData(e)
            }
        }
    }
}

impl SigninRefusal {
    fn reply(&self) -> Reply {
        use SigninRefusal as R;
        let message = self.to_string();
        match self {
            R::InvalidAuth(_) | R::InvalidUserData(_) | R::SignedInAsAnother => {
                Reply::fatal(CloseCode::Unauthorized, &message)
            }
            R::WatchlistTooLarge => Reply::error(CloseCode::WatchlistTooLarge, &message),
            R::BusUnavailable => Reply::error(CloseCode::GenericError, &message),
        }
    }
}

pub(crate) async fn handle(
    edge: &Arc<Edge>,
    session: &mut Session,
    auth: &str,
    user_data: &str,
) -> Reply {
    match sign_in(edge, session, auth, user_data).await {
        Ok(frames) => Reply::frames(frames),
        Err(refusal) => refusal.reply(),
    }
}

/// Signs the connection in; the frames answer it.
async fn sign_in(
    edge: &Arc<Edge>,
    session: &mut Session,
    auth: &str,
    user_data: &str,
) -> Result<Vec<String>, SigninRefusal> {
    let app = &session.app;
    let message = signature::signin_string(&session.socket_id, user_data);
    signature::verify_token(&app.key, app.secret.expose(), auth, &message)
        .map_err(SigninRefusal::InvalidAuth)?;
    let user = user::parse_user_data(user_data)?;
    match &session.user {
        Some(current) if current.id != user.id => return Err(SigninRefusal::SignedInAsAnother),
        Some(_) => return Ok(vec![frame::signin_success(user_data)]),
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
        return Err(SigninRefusal::BusUnavailable);
    }
    for watched in &user.watchlist {
        let subject = watch_subject(&session.app.id, watched);
        if let Err(e) = listen(edge, session, Index::Watch, watched, subject).await {
            tracing::warn!(error = %e, "watchlist subscribe failed");
        }
    }
    let core = &edge.deps.core;
    let (app_id, edge_id) = (session.app.id.clone(), edge.id());
    match core
        .user_signed_in(&app_id, &user.id, &edge_id, &session.socket_id)
        .await
    {
        Ok(()) => {}
        Err(channel_core::CoreError::Fenced(_)) => edge.start_afresh(&edge_id),
        Err(e) => tracing::warn!(error = %e, "user online report failed"),
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
    Ok(frames)
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
    let sign_out = Removal::SignOut {
        app_id: session.app_id.clone(),
        user_id: user.id.as_str().into(),
        edge: edge.id(),
        socket_id: session.socket_id.clone(),
    };
    edge.removals.send(sign_out, edge.deps.core.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each refusal sent before refusals were named: the code, whether the connection
    /// closes, the message, and the metric label.
    #[test]
    fn each_refusal_is_sent_as_before() {
        use SigninRefusal as R;
        let cases = [
            (
                R::InvalidAuth(AuthTokenError::WrongKey),
                4009,
                true,
                "signin failed: auth key does not match the application key",
                "unauthorized",
            ),
            (
                R::from(UserDataError::MissingId),
                4009,
                true,
                "signin failed: user_data must have a non-empty string id",
                "unauthorized",
            ),
            (
                R::from(UserDataError::WatchlistTooLarge),
                4302,
                false,
                "watchlist has more than 100 user ids",
                "watchlist_too_large",
            ),
            (
                R::SignedInAsAnother,
                4009,
                true,
                "connection is already signed in as another user",
                "unauthorized",
            ),
            (
                R::BusUnavailable,
                4000,
                false,
                "signin temporarily unavailable, try again",
                "invalid_frame",
            ),
        ];
        for (refusal, code, closes, message, label) in cases {
            let reply = refusal.reply();
            assert_eq!(
                reply.frames,
                vec![frame::error(code, message)],
                "{refusal:?}"
            );
            assert_eq!(reply.close.map(CloseCode::code), closes.then_some(code));
            assert_eq!(reply.rejected, Some(label), "{refusal:?}");
        }
    }
}
