use async_trait::async_trait;

use crate::CoreError;

/// Signed-in users: each user's signed-in connections (edge, socket), for the watchlist.
///
/// Contract: a user is online while at least one of its connections is signed in; `connect`
/// reports the first and `disconnect` the last, atomically, so `online` and `offline` are
/// each published once per transition.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Records a signed-in connection of `user_id`; true when it is the user's first.
    async fn user_connect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError>;

    /// Forgets a signed-in connection; true when it was the user's last.
    async fn user_disconnect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError>;

    /// Which of `user_ids` have at least one signed-in connection.
    async fn users_online(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<String>, CoreError>;
}
