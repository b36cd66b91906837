//! Removals core has not confirmed: a presence leave, a sign-out or a connection release that
//! failed (core or Redis was down) is retried after each heartbeat core answers, until core
//! takes it or the edge id it was made under is replaced (that id is then reaped, which
//! removes it anyway). Without this, a leave lost in an outage would keep a ghost member for
//! as long as the edge lives.

use std::sync::{Arc, Mutex, PoisonError};

use channel_core::{CoreError, EdgeCore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    Leave {
        app_id: Arc<str>,
        channel: Box<str>,
        edge: Arc<str>,
        socket_id: Arc<str>,
    },
    SignOut {
        app_id: Arc<str>,
        user_id: Box<str>,
        edge: Arc<str>,
        socket_id: Arc<str>,
    },
    Release {
        app_id: Arc<str>,
        edge: Arc<str>,
    },
}

impl Removal {
    pub(crate) async fn send(&self, core: &dyn EdgeCore) -> Result<(), CoreError> {
        match self {
            Removal::Leave {
                app_id,
                channel,
                edge,
                socket_id,
            } => core.leave_presence(app_id, channel, edge, socket_id).await,
            Removal::SignOut {
                app_id,
                user_id,
                edge,
                socket_id,
            } => core.user_signed_out(app_id, user_id, edge, socket_id).await,
            Removal::Release { app_id, edge } => core.release_connection(app_id, edge).await,
        }
    }

    fn edge(&self) -> &str {
        match self {
            Removal::Leave { edge, .. }
            | Removal::SignOut { edge, .. }
            | Removal::Release { edge, .. } => edge,
        }
    }
}

#[derive(Default)]
pub(crate) struct Removals {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    removals: Vec<Removal>,
    /// Leaves withdrawn while a retry pass held them: (app, channel, socket).
    withdrawn: Vec<(Arc<str>, Box<str>, Arc<str>)>,
}

impl Pending {
    /// Whether `removal` is a leave withdrawn by a re-join.
    fn withdrew(&self, removal: &Removal) -> bool {
        self.withdrawn
            .iter()
            .any(|(app, name, socket)| removal.is_leave_of(app, name, socket))
    }
}

impl Removal {
    /// Whether this is the leave of `socket` from `channel` of `app`.
    fn is_leave_of(&self, app: &str, name: &str, socket: &str) -> bool {
        matches!(self, Removal::Leave { app_id, channel, socket_id, .. }
            if **app_id == *app && **channel == *name && **socket_id == *socket)
    }
}

impl Removals {
    /// Sends `removal`; if core does not take it, keeps it for [`Removals::retry`].
    pub(crate) async fn send(&self, removal: Removal, core: &dyn EdgeCore) {
        if let Err(e) = removal.send(core).await {
            tracing::warn!(error = %e, ?removal, "removal failed; will retry");
            self.lock().removals.push(removal);
        }
    }

    /// A socket subscribes again to a channel whose leave is still pending: the leave must not
    /// run after the new join, so it is dropped (the join finds the old connection and keeps
    /// it).
    pub(crate) fn forget_leave(&self, app: &str, name: &str, socket: &str) {
        let mut pending = self.lock();
        pending
            .removals
            .retain(|r| !r.is_leave_of(app, name, socket));
        // A retry pass may hold it right now: it checks this before sending or keeping it.
        pending
            .withdrawn
            .push((app.into(), name.into(), socket.into()));
    }

    fn withdrawn(&self, removal: &Removal) -> bool {
        self.lock().withdrew(removal)
    }

    /// Sends every pending removal made under `edge` once; those that fail stay. Removals made
    /// under an earlier id are dropped: the reap of that id removes what they would have.
    /// A pass stops at the first failure (core is still down), keeping the rest.
    pub(crate) async fn retry(&self, edge: &str, core: &dyn EdgeCore) {
        let pending = {
            let mut pending = self.lock();
            pending.withdrawn.clear();
            std::mem::take(&mut pending.removals)
        };
        let mut kept = Vec::new();
        let mut failed = false;
        for removal in pending {
            if removal.edge() != edge || self.withdrawn(&removal) {
                continue;
            }
            if failed || removal.send(core).await.is_err() {
                failed = true;
                kept.push(removal);
            }
        }
        let mut pending = self.lock();
        kept.retain(|r| !pending.withdrew(r));
        pending.removals.extend(kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
