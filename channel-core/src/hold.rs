//! Leaving webhooks (`channel_vacated`, `member_removed`) wait a few seconds and are dropped
//! if the channel or member returns in that window; the matching return event
//! (`channel_occupied`, `member_added`) is then dropped too, so a page reload sends nothing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What is held: a channel (`user_id: None`) or one member of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HoldKey {
    pub app_id: String,
    pub channel: String,
    pub user_id: Option<String>,
}

#[derive(Default)]
pub(crate) struct Holds {
    /// key → generation of the pending hold; a newer hold of the same key replaces it.
    pending: Mutex<HashMap<HoldKey, u64>>,
    next: Mutex<u64>,
}

impl Holds {
    fn pending(&self) -> MutexGuard<'_, HashMap<HoldKey, u64>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts holding `key`; returns the generation to confirm with later.
    pub fn hold(&self, key: HoldKey) -> u64 {
        let gen = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        self.pending().insert(key, gen);
        gen
    }

    /// The channel or member came back: true if a hold was pending (and is now dropped).
    pub fn cancel(&self, key: &HoldKey) -> bool {
        self.pending().remove(key).is_some()
    }

    /// The window passed: true if this hold is still the pending one (and is now released).
    pub fn release(&self, key: &HoldKey, gen: u64) -> bool {
        let mut pending = self.pending();
        if pending.get(key) == Some(&gen) {
            pending.remove(key);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HoldKey {
        HoldKey {
            app_id: "a".into(),
            channel: "c".into(),
            user_id: None,
        }
    }

    #[test]
    fn a_return_cancels_the_hold() {
        let h = Holds::default();
        let gen = h.hold(key());
        assert!(h.cancel(&key()));
        assert!(!h.release(&key(), gen));
    }

    #[test]
    fn an_unanswered_hold_is_released_once() {
        let h = Holds::default();
        let gen = h.hold(key());
        assert!(h.release(&key(), gen));
        assert!(!h.release(&key(), gen));
        assert!(!h.cancel(&key()));
    }

    #[test]
    fn a_newer_hold_supersedes_an_older_one() {
        let h = Holds::default();
        let old = h.hold(key());
        let new = h.hold(key());
        assert!(!h.release(&key(), old));
        assert!(h.release(&key(), new));
    }
}
