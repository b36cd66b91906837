//! The Lua scripts, one per decision that must be atomic. Each file documents its KEYS, ARGV
//! and reply. Scripts that add to what an edge holds start with `guard.lua` (see
//! `RedisStore::eval_guarded`); scripts whose change causes effects include `outbox.lua`.

use redis::Script;

pub(super) struct Scripts {
    pub count: Script,
    pub join: Script,
    pub leave: Script,
    pub reap_channel: Script,
    pub user_connect: Script,
    pub user_disconnect: Script,
    pub reap_user: Script,
    pub touch_edge: Script,
    pub claim_edge: Script,
    pub admit_connection: Script,
    pub release_connection: Script,
    pub take_quota: Script,
    pub hold_put: Script,
    pub hold_cancel: Script,
    pub hold_claim: Script,
    pub hold_forget: Script,
    pub register_edge: Script,
    pub forget_edge: Script,
    pub effect_claim: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            count: Script::new(concat!(
                include_str!("guard.lua"),
                include_str!("outbox.lua"),
                include_str!("count.lua")
            )),
            join: Script::new(concat!(
                include_str!("guard.lua"),
                include_str!("outbox.lua"),
                include_str!("join.lua")
            )),
            leave: Script::new(concat!(
                include_str!("outbox.lua"),
                include_str!("leave.lua")
            )),
            reap_channel: Script::new(concat!(
                include_str!("outbox.lua"),
                include_str!("reap_channel.lua")
            )),
            user_connect: Script::new(concat!(
                include_str!("guard.lua"),
                include_str!("outbox.lua"),
                include_str!("user_connect.lua")
            )),
            user_disconnect: Script::new(concat!(
                include_str!("outbox.lua"),
                include_str!("user_disconnect.lua")
            )),
            reap_user: Script::new(concat!(
                include_str!("outbox.lua"),
                include_str!("reap_user.lua")
            )),
            touch_edge: Script::new(include_str!("touch_edge.lua")),
            claim_edge: Script::new(include_str!("claim_edge.lua")),
            admit_connection: Script::new(concat!(
                include_str!("guard.lua"),
                include_str!("admit_connection.lua")
            )),
            release_connection: Script::new(include_str!("release_connection.lua")),
            take_quota: Script::new(include_str!("take_quota.lua")),
            hold_put: Script::new(include_str!("hold_put.lua")),
            hold_cancel: Script::new(include_str!("hold_cancel.lua")),
            hold_claim: Script::new(include_str!("hold_claim.lua")),
            hold_forget: Script::new(include_str!("hold_forget.lua")),
            register_edge: Script::new(include_str!("register_edge.lua")),
            forget_edge: Script::new(include_str!("forget_edge.lua")),
            effect_claim: Script::new(include_str!("effect_claim.lua")),
        }
    }

    pub(super) fn all(&self) -> [&Script; 19] {
        [
            &self.count,
            &self.join,
            &self.leave,
            &self.reap_channel,
            &self.user_connect,
            &self.user_disconnect,
            &self.reap_user,
            &self.touch_edge,
            &self.claim_edge,
            &self.admit_connection,
            &self.release_connection,
            &self.take_quota,
            &self.hold_put,
            &self.hold_cancel,
            &self.hold_claim,
            &self.hold_forget,
            &self.register_edge,
            &self.forget_edge,
            &self.effect_claim,
        ]
    }
}
