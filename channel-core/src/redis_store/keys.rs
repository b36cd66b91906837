//! Key names. Every key of one app starts with `<ns>:{<app>}`, so the Redis Cluster hash tag
//! puts all of an app's keys in one slot and a script may touch any of them.
//!
//! Names are never parsed back out of keys (names travel as values), so a key only has to be
//! unique: each variable part is either the last part of its key or length-prefixed, and the
//! app id has its `{`, `}` and `%` percent-escaped so it cannot end the hash tag early.
//!
//! Key layout (`ns` is the namespace, `{app}` the app id as a hash tag):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `ns:{app}:cnt:<channel>` | HASH | edge → subscriber count |
//! | `ns:{app}:mem:<channel>` | HASH | user id → user_info |
//! | `ns:{app}:ord:<channel>` | ZSET | user id → join sequence |
//! | `ns:{app}:conn:<channel>` | HASH | `len(edge):edge:socket` → user id |
//! | `ns:{app}:ucnt:<channel>` | HASH | user id → presence connections |
//! | `ns:{app}:esock:<len>:<channel>:<edge>` | SET | the edge's presence sockets |
//! | `ns:{app}:mseq:<channel>` | STRING | membership sequence number (kept an hour after the last member) |
//! | `ns:{app}:occupied` | ZSET | channels with a total above zero, by name |
//! | `ns:{app}:cache:<channel>` | STRING | last cache-channel frame, with PX expiry |
//! | `ns:{app}:online:<user>` | SET | `len(edge):edge:socket` signed in as the user |
//! | `ns:{app}:usock:<len>:<user>:<edge>` | SET | the user's sockets on the edge |
//! | `ns:{app}:conns` | HASH | edge → connections (counted only for apps with a maximum) |
//! | `ns:{app}:quota:<bucket>` | STRING | `<unix second> <used>` of a per-second allowance |
//! | `ns:{app}:holds` | HASH | hold key → held leaving webhook job |
//! | `ns:{app}:holds-due` | ZSET | hold key → due time in ms by the Redis clock |
//! | `ns:{app}:holds-claimed` | HASH | hold key → 1 while a replica sends it (not cancellable) |
//! | `ns:holds-apps` | SET | apps that may have held webhooks (a superset) |
//! | `ns:{app}:fx` | HASH | outbox: effect id → effect JSON (see `outbox.lua`) |
//! | `ns:{app}:fx-due` | ZSET | effect id → when it was made (ms, Redis clock): their order |
//! | `ns:{app}:fx-claimed` | HASH | effect id → deadline of the relay that claimed it (ms) |
//! | `ns:{app}:fx-seq` | STRING | the last effect id |
//! | `ns:fx-apps` | SET | apps that may have effects (a superset) |
//! | `ns:{app}:edge:<edge>` | SET | what the edge holds in the app (`c<channel>`, `u<user>`, `n`) |
//! | `ns:{app}:fenced` | ZSET | reaped edges refused in this app → when fenced (ms), for an hour |
//! | `ns:{app}:edges` | HASH | edges registered in this app (their first write there indexed it) |
//! | `ns:{edges}:apps:<edge>` | SET | apps the edge may hold something in (a superset) |
//! | `ns:{edges}:live` | ZSET | edge → lease expiry in ms by the Redis clock |
//! | `ns:{edges}:reaping` | ZSET | edge → deadline of the reaper that claimed it |
//! | `ns:{edges}:dead` | ZSET | reaped edges → when (ms), for an hour: never live again |
//! | `ns:{edges}:provisional` | SET | edges whose lease a write made before their first beat |

use crate::store::Holding;

pub(super) struct Keys {
    ns: String,
}

/// Keys of one app.
pub(super) struct AppKeys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(ns: &str) -> Keys {
        Keys { ns: ns.to_owned() }
    }

    pub(super) fn app(&self, app_id: &str) -> AppKeys {
        let mut escaped = String::with_capacity(app_id.len());
        for c in app_id.chars() {
            match c {
                '%' => escaped.push_str("%25"),
                '{' => escaped.push_str("%7B"),
                '}' => escaped.push_str("%7D"),
                c => escaped.push(c),
            }
        }
        AppKeys {
            prefix: format!("{}:{{{escaped}}}", self.ns),
        }
    }

    /// ZSET edge → lease expiry (ms, Redis clock). Not per app; shares a hash tag with
    /// [`Keys::reaping`] because one script moves edges between the two.
    pub(super) fn leases(&self) -> String {
        format!("{}:{{edges}}:live", self.ns)
    }

    /// ZSET edge → deadline of the reaper that claimed it (ms, Redis clock).
    pub(super) fn reaping(&self) -> String {
        format!("{}:{{edges}}:reaping", self.ns)
    }

    /// SET of app ids that may have held webhooks (a superset).
    pub(super) fn holds_apps(&self) -> String {
        format!("{}:holds-apps", self.ns)
    }

    /// SET of edges whose lease a write made before their first heartbeat (`register_edge`).
    pub(super) fn provisional(&self) -> String {
        format!("{}:{{edges}}:provisional", self.ns)
    }

    /// ZSET of reaped edges → when they were forgotten (ms), pruned after an hour: an edge
    /// here never gets a lease or registers in an app again.
    pub(super) fn dead(&self) -> String {
        format!("{}:{{edges}}:dead", self.ns)
    }

    /// SET of app ids that may have effects in their outbox (a superset).
    pub(super) fn effect_apps(&self) -> String {
        format!("{}:fx-apps", self.ns)
    }

    /// SET of app ids in which `edge` may hold something (a superset). In the `{edges}`
    /// slot, so registering an app checks the lease in the same script.
    pub(super) fn edge_apps(&self, edge: &str) -> String {
        format!("{}:{{edges}}:apps:{edge}", self.ns)
    }
}

impl AppKeys {
    fn of(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// HASH edge → subscriber count (only non-zero counts are stored).
    pub(super) fn counts(&self, channel: &str) -> String {
        self.of("cnt", channel)
    }

    /// HASH user id → user_info JSON.
    pub(super) fn members(&self, channel: &str) -> String {
        self.of("mem", channel)
    }

    /// ZSET user id → join sequence.
    pub(super) fn order(&self, channel: &str) -> String {
        self.of("ord", channel)
    }

    /// HASH [`conn`] → user id.
    pub(super) fn conns(&self, channel: &str) -> String {
        self.of("conn", channel)
    }

    /// HASH user id → number of presence connections.
    pub(super) fn user_conns(&self, channel: &str) -> String {
        self.of("ucnt", channel)
    }

    /// SET of the socket ids `edge` has in a presence channel, so reaping visits only those.
    pub(super) fn edge_sockets(&self, channel: &str, edge: &str) -> String {
        format!("{}:esock:{}:{channel}:{edge}", self.prefix, channel.len())
    }

    /// STRING: the channel's membership sequence number.
    pub(super) fn member_seq(&self, channel: &str) -> String {
        self.of("mseq", channel)
    }

    /// ZSET (all scores 0, so ordered by name) of channels whose total is above zero.
    pub(super) fn occupied(&self) -> String {
        format!("{}:occupied", self.prefix)
    }

    /// STRING with a PX expiry.
    pub(super) fn cache(&self, channel: &str) -> String {
        self.of("cache", channel)
    }

    /// SET of a user's signed-in [`conn`]s.
    pub(super) fn online(&self, user_id: &str) -> String {
        self.of("online", user_id)
    }

    /// SET of the socket ids a user is signed in with on `edge`.
    pub(super) fn user_sockets(&self, user_id: &str, edge: &str) -> String {
        format!("{}:usock:{}:{user_id}:{edge}", self.prefix, user_id.len())
    }

    /// HASH hold key → held webhook job.
    pub(super) fn holds(&self) -> String {
        format!("{}:holds", self.prefix)
    }

    /// ZSET hold key → due time (ms, Redis clock).
    pub(super) fn holds_due(&self) -> String {
        format!("{}:holds-due", self.prefix)
    }

    /// HASH hold key → 1 while a replica is sending it.
    pub(super) fn holds_claimed(&self) -> String {
        format!("{}:holds-claimed", self.prefix)
    }

    /// HASH effect id → deadline (ms) of the relay that claimed it.
    pub(super) fn effects_claimed(&self) -> String {
        format!("{}:fx-claimed", self.prefix)
    }

    /// The app's outbox: HASH effect id → effect JSON, ZSET effect id → creation ms, and the
    /// counter that makes ids.
    pub(super) fn outbox(&self) -> [String; 3] {
        [
            format!("{}:fx", self.prefix),
            format!("{}:fx-due", self.prefix),
            format!("{}:fx-seq", self.prefix),
        ]
    }

    /// HASH edge → connections in this app.
    pub(super) fn connections(&self) -> String {
        format!("{}:conns", self.prefix)
    }

    /// STRING `<unix second> <used>`.
    pub(super) fn quota(&self, bucket: &str) -> String {
        self.of("quota", bucket)
    }

    /// ZSET of edges fenced out of this app (a reaper took them) → when (ms).
    pub(super) fn fenced(&self) -> String {
        format!("{}:fenced", self.prefix)
    }

    /// HASH of edges registered in this app: their apps index names it.
    pub(super) fn registered(&self) -> String {
        format!("{}:edges", self.prefix)
    }

    /// SET of [`channel_holding`] / [`user_holding`] values `edge` holds in this app.
    pub(super) fn holdings(&self, edge: &str) -> String {
        self.of("edge", edge)
    }
}

/// One connection as a single value; the length prefix keeps (edge, socket) pairs distinct.
pub(super) fn conn(edge: &str, socket_id: &str) -> String {
    format!("{}:{edge}:{socket_id}", edge.len())
}

/// What every [`conn`] of `edge` starts with, and nothing else does.
pub(super) fn conn_prefix(edge: &str) -> String {
    conn(edge, "")
}

pub(super) fn channel_holding(channel: &str) -> String {
    format!("c{channel}")
}

pub(super) fn user_holding(user_id: &str) -> String {
    format!("u{user_id}")
}

/// The edge's share of the app's connection count.
pub(super) const CONNECTIONS_HOLDING: &str = "n";

pub(super) fn parse_holding(app_id: &str, value: &str) -> Option<Holding> {
    if value == CONNECTIONS_HOLDING {
        return Some(Holding::Connections {
            app_id: app_id.to_owned(),
        });
    }
    if let Some(channel) = value.strip_prefix('c') {
        return Some(Holding::Channel {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
        });
    }
    value.strip_prefix('u').map(|user_id| Holding::User {
        app_id: app_id.to_owned(),
        user_id: user_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_cannot_end_the_hash_tag() {
        let keys = Keys::new("sy");
        assert_eq!(keys.app("1").counts("c"), "sy:{1}:cnt:c");
        assert_eq!(keys.app("a}b").counts("c"), "sy:{a%7Db}:cnt:c");
        assert_ne!(
            keys.app("1}:cnt:x").counts("y"),
            keys.app("1").counts("x}:cnt:y")
        );
        assert_ne!(keys.app("%7D").occupied(), keys.app("}").occupied());
    }

    #[test]
    fn two_part_names_do_not_collide() {
        let app = Keys::new("sy").app("1");
        assert_ne!(app.edge_sockets("a:b", "c"), app.edge_sockets("a", "b:c"));
        assert_ne!(app.user_sockets("a:b", "c"), app.user_sockets("a", "b:c"));
        assert_ne!(conn("a:b", "c"), conn("a", "b:c"));
        assert!(conn("e", "1.2").starts_with(&conn_prefix("e")));
        assert!(!conn("e:x", "1.2").starts_with(&conn_prefix("e")));
    }

    #[test]
    fn holdings_round_trip() {
        assert_eq!(
            parse_holding("a", &channel_holding("presence-u")),
            Some(Holding::Channel {
                app_id: "a".into(),
                channel: "presence-u".into()
            })
        );
        assert_eq!(
            parse_holding("a", &user_holding("c-1")),
            Some(Holding::User {
                app_id: "a".into(),
                user_id: "c-1".into()
            })
        );
        assert_eq!(
            parse_holding("a", CONNECTIONS_HOLDING),
            Some(Holding::Connections { app_id: "a".into() })
        );
        assert_eq!(parse_holding("a", "x"), None);
    }
}
