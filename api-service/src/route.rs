//! The API's route table, the one place a path becomes a route: dispatch matches on the
//! [`Route`] and [`AdminRoute`] parsed here, and spans are named by [`Target::name`], so a
//! route cannot be served without a name or named without being served.

use hyper::Method;

/// Where a request is headed, parsed from its method and percent-decoded path segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// Under `/apps/{app_id}/`. `route` is `None` when nothing matches; that is refused only
    /// after the request is authenticated, so an unsigned caller learns no more than 401.
    App {
        app_id: &'a str,
        route: Option<Route<'a>>,
    },
    /// Under `/admin/`. `rest` is the path after `admin`; `route` is `None` when nothing
    /// matches, refused only after the admin token is checked.
    Admin {
        rest: &'a [&'a str],
        route: Option<AdminRoute<'a>>,
    },
    /// Neither: refused before any authentication, as there is nothing to authenticate against.
    Unknown,
}

/// A Pusher HTTP API route under `/apps/{app_id}/`, with its path parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Events,
    BatchEvents,
    Channels,
    Channel { channel: &'a str },
    ChannelUsers { channel: &'a str },
    TerminateUser { user_id: &'a str },
}

/// An admin API route under `/admin/`, with its path parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminRoute<'a> {
    ListApps,
    CreateApp,
    GetApp { id: &'a str },
    UpdateApp { id: &'a str },
    SetEnabled { id: &'a str, enabled: bool },
    RotateSecret { id: &'a str },
}

/// The span name of a request that matches no route.
pub(crate) const UNKNOWN_ROUTE: &str = "unknown route";

/// The span name of every admin request: admin traffic is rare and its paths hold app ids, so
/// one name is enough.
pub(crate) const ADMIN: &str = "/admin";

impl<'a> Target<'a> {
    /// `segments` is the path split on `/` (outer slashes trimmed), each segment decoded.
    pub(crate) fn parse(method: &Method, segments: &'a [&'a str]) -> Target<'a> {
        match segments {
            ["admin", rest @ ..] => Target::Admin {
                rest,
                route: AdminRoute::parse(method, rest),
            },
            ["apps", app_id, rest @ ..] => Target::App {
                app_id,
                route: Route::parse(method, rest),
            },
            _ => Target::Unknown,
        }
    }

    /// The span name: the route template, never the raw path, which holds channel and user
    /// names.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Target::App {
                route: Some(route), ..
            } => route.name(),
            Target::Admin { .. } => ADMIN,
            Target::App { route: None, .. } | Target::Unknown => UNKNOWN_ROUTE,
        }
    }
}

impl<'a> Route<'a> {
    /// `rest` is the path after `/apps/{app_id}`.
    pub(crate) fn parse(method: &Method, rest: &'a [&'a str]) -> Option<Route<'a>> {
        Some(match (method, rest) {
            (&Method::POST, ["events"]) => Route::Events,
            (&Method::POST, ["batch_events"]) => Route::BatchEvents,
            (&Method::GET, ["channels"]) => Route::Channels,
            (&Method::GET, ["channels", channel]) => Route::Channel { channel },
            (&Method::GET, ["channels", channel, "users"]) => Route::ChannelUsers { channel },
            (&Method::POST, ["users", user_id, "terminate_connections"]) => {
                Route::TerminateUser { user_id }
            }
            _ => return None,
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Events => "POST /apps/{app_id}/events",
            Route::BatchEvents => "POST /apps/{app_id}/batch_events",
            Route::Channels => "GET /apps/{app_id}/channels",
            Route::Channel { .. } => "GET /apps/{app_id}/channels/{channel}",
            Route::ChannelUsers { .. } => "GET /apps/{app_id}/channels/{channel}/users",
            Route::TerminateUser { .. } => {
                "POST /apps/{app_id}/users/{user_id}/terminate_connections"
            }
        }
    }
}

impl<'a> AdminRoute<'a> {
    /// `rest` is the path after `/admin`.
    pub(crate) fn parse(method: &Method, rest: &'a [&'a str]) -> Option<AdminRoute<'a>> {
        Some(match (method, rest) {
            (&Method::GET, ["apps"]) => AdminRoute::ListApps,
            (&Method::POST, ["apps"]) => AdminRoute::CreateApp,
            (&Method::GET, ["apps", id]) => AdminRoute::GetApp { id },
            (&Method::PATCH, ["apps", id]) => AdminRoute::UpdateApp { id },
            (&Method::POST, ["apps", id, "enable"]) => AdminRoute::SetEnabled { id, enabled: true },
            (&Method::POST, ["apps", id, "disable"]) => {
                AdminRoute::SetEnabled { id, enabled: false }
            }
            (&Method::POST, ["apps", id, "rotate-secret"]) => AdminRoute::RotateSecret { id },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(method: Method, segments: &'a [&'a str]) -> Target<'a> {
        Target::parse(&method, segments)
    }

    #[test]
    fn every_app_route_parses_and_is_named_by_its_template() {
        let cases: [(Method, &[&str], Route, &str); 6] = [
            (
                Method::POST,
                &["apps", "42", "events"],
                Route::Events,
                "POST /apps/{app_id}/events",
            ),
            (
                Method::POST,
                &["apps", "42", "batch_events"],
                Route::BatchEvents,
                "POST /apps/{app_id}/batch_events",
            ),
            (
                Method::GET,
                &["apps", "42", "channels"],
                Route::Channels,
                "GET /apps/{app_id}/channels",
            ),
            (
                Method::GET,
                &["apps", "42", "channels", "presence-room"],
                Route::Channel {
                    channel: "presence-room",
                },
                "GET /apps/{app_id}/channels/{channel}",
            ),
            (
                Method::GET,
                &["apps", "42", "channels", "presence-room", "users"],
                Route::ChannelUsers {
                    channel: "presence-room",
                },
                "GET /apps/{app_id}/channels/{channel}/users",
            ),
            (
                Method::POST,
                &["apps", "42", "users", "u1", "terminate_connections"],
                Route::TerminateUser { user_id: "u1" },
                "POST /apps/{app_id}/users/{user_id}/terminate_connections",
            ),
        ];
        for (method, segments, route, name) in cases {
            let parsed = target(method, segments);
            assert_eq!(
                parsed,
                Target::App {
                    app_id: "42",
                    route: Some(route)
                },
                "{segments:?}"
            );
            assert_eq!(parsed.name(), name);
        }
    }

    #[test]
    fn every_admin_route_parses_and_is_named_admin() {
        let cases: [(Method, &[&str], AdminRoute); 7] = [
            (Method::GET, &["admin", "apps"], AdminRoute::ListApps),
            (Method::POST, &["admin", "apps"], AdminRoute::CreateApp),
            (
                Method::GET,
                &["admin", "apps", "a1"],
                AdminRoute::GetApp { id: "a1" },
            ),
            (
                Method::PATCH,
                &["admin", "apps", "a1"],
                AdminRoute::UpdateApp { id: "a1" },
            ),
            (
                Method::POST,
                &["admin", "apps", "a1", "enable"],
                AdminRoute::SetEnabled {
                    id: "a1",
                    enabled: true,
                },
            ),
            (
                Method::POST,
                &["admin", "apps", "a1", "disable"],
                AdminRoute::SetEnabled {
                    id: "a1",
                    enabled: false,
                },
            ),
            (
                Method::POST,
                &["admin", "apps", "a1", "rotate-secret"],
                AdminRoute::RotateSecret { id: "a1" },
            ),
        ];
        for (method, segments, route) in cases {
            let parsed = target(method, segments);
            assert_eq!(
                parsed,
                Target::Admin {
                    rest: &segments[1..],
                    route: Some(route)
                },
                "{segments:?}"
            );
            assert_eq!(parsed.name(), ADMIN);
        }
    }

    #[test]
    fn unknown_routes_parse_to_none_and_are_named_so() {
        // A known path with the wrong method, a path under an app that no route has, and a
        // path outside both prefixes.
        for (method, segments) in [
            (Method::DELETE, &["apps", "42", "events"][..]),
            (Method::GET, &["apps", "42", "events"]),
            (Method::GET, &["apps", "42"]),
            (Method::GET, &["apps", "42", "channels", "a", "members"]),
            (Method::POST, &["apps", "42", "users", "u1"]),
        ] {
            let parsed = target(method, segments);
            assert!(
                matches!(
                    parsed,
                    Target::App {
                        app_id: "42",
                        route: None
                    }
                ),
                "{segments:?}"
            );
            assert_eq!(parsed.name(), UNKNOWN_ROUTE);
        }
        for segments in [&["apps"][..], &["app", "42", "events"], &[""]] {
            assert_eq!(target(Method::POST, segments), Target::Unknown);
            assert_eq!(target(Method::POST, segments).name(), UNKNOWN_ROUTE);
        }
    }

    #[test]
    fn unknown_admin_routes_keep_the_admin_name() {
        let parsed = target(Method::DELETE, &["admin", "apps", "a1"]);
        assert_eq!(
            parsed,
            Target::Admin {
                rest: &["apps", "a1"],
                route: None
            }
        );
        assert_eq!(parsed.name(), ADMIN);
        assert_eq!(target(Method::GET, &["admin"]).name(), ADMIN);
        assert_eq!(
            target(Method::POST, &["admin", "apps", "a1", "delete"]),
            Target::Admin {
                rest: &["apps", "a1", "delete"],
                route: None
            }
        );
    }
}
