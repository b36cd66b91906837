use std::time::Duration;

use channel_core::CoreError;
use hyper::{Response, StatusCode};
use switchyard_apps::AppStoreError;
use switchyard_bus::BusError;
use switchyard_listener::Body;
use switchyard_protocol::rest::RestAuthError;
use switchyard_protocol::ChannelNameError;

/// Every way an API request fails, named after the condition. [`ApiError::class`] is the one
/// mapping to an HTTP status and [`ApiError::into_response`] the one place the Pusher error
/// body is rendered; the message is the `Display` text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route matches; holds the path, or the method and path once the app is known.
    #[error("no such endpoint: {0}")]
    NoSuchEndpoint(String),
    /// No admin route matches; holds the method and path.
    #[error("no such admin endpoint: {0}")]
    NoSuchAdminEndpoint(String),
    #[error("request bodies must be JSON with Content-Type: application/json")]
    NotJson,
    #[error("request body exceeds {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("could not read request body: {0}")]
    UnreadableBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("request not handled within {0:?}; try again")]
    Timeout(Duration),

    /// The app in a signed request's path does not exist.
    #[error("unknown app id {0:?}")]
    UnknownApp(String),
    /// Looking up the app of a signed request failed. Whatever the store's reason, the caller
    /// can only retry, so this is always 503 (unlike [`ApiError::AppStore`]).
    #[error(transparent)]
    AppLookup(AppStoreError),
    #[error("missing auth_key parameter")]
    MissingAuthKey,
    #[error("auth_key does not match the app")]
    WrongAuthKey,
    /// The signature, timestamp, auth version or body MD5 did not verify; the protocol's
    /// error names which, so it is carried rather than copied into variants here.
    #[error(transparent)]
    SignatureRejected(RestAuthError),
    #[error("application is disabled")]
    AppDisabled,
    #[error("over the app's limit of {per_second} {what} per second")]
    RateLimited { per_second: u64, what: &'static str },

    #[error("invalid JSON body: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("channel {name:?}: {source}")]
    InvalidChannelName {
        name: String,
        source: ChannelNameError,
    },
    #[error("event name must be 1 to {max} characters")]
    EventNameLength { max: usize },
    #[error("event data is {size} bytes; the limit is {max}")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("an event goes to 1 to {max} channels")]
    ChannelCount { max: usize },
    #[error("a batch holds 1 to {max} events")]
    BatchSize { max: usize },
    /// The many small rules on a body or query (a missing field, a reserved name, an info
    /// attribute on the wrong kind of channel): one variant each would add nothing a caller
    /// could act on beyond the message.
    #[error("{0}")]
    InvalidRequest(String),

    #[error("the admin API is off: set [server] admin_token (SWITCHYARD_ADMIN_TOKEN)")]
    AdminApiOff,
    #[error("missing or wrong admin token (Authorization: Bearer <token>)")]
    AdminTokenRejected,
    /// The app an admin request names does not exist.
    #[error("no app with id {0:?}")]
    NoSuchApp(String),
    /// The app store refused or failed an admin read or change; its error says which.
    #[error(transparent)]
    AppStore(AppStoreError),

    #[error(transparent)]
    CoreUnavailable(#[from] CoreError),
    #[error("event bus unavailable: {0}")]
    BusUnavailable(#[from] BusError),
}

// The statuses with the `reason` label a refusal is counted under. The labels predate the
// condition names and dashboards query them, so they stay per status.
const BAD_REQUEST: (StatusCode, &str) = (StatusCode::BAD_REQUEST, "bad_request");
const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "unauthorized");
const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "forbidden");
const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
const CONFLICT: (StatusCode, &str) = (StatusCode::CONFLICT, "conflict");
const PAYLOAD_TOO_LARGE: (StatusCode, &str) = (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
const UNSUPPORTED_MEDIA_TYPE: (StatusCode, &str) =
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
const TOO_MANY_REQUESTS: (StatusCode, &str) = (StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
const UNAVAILABLE: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "unavailable");

impl ApiError {
    /// The one mapping from condition to HTTP status and rejection-metric label.
    fn class(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NoSuchEndpoint(_)
            | Self::NoSuchAdminEndpoint(_)
            | Self::UnknownApp(_)
            | Self::NoSuchApp(_)
            | Self::AdminApiOff => NOT_FOUND,
            Self::NotJson => UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } | Self::PayloadTooLarge { .. } => PAYLOAD_TOO_LARGE,
            Self::UnreadableBody(_)
            | Self::InvalidJson(_)
            | Self::InvalidChannelName { .. }
            | Self::EventNameLength { .. }
            | Self::ChannelCount { .. }
            | Self::BatchSize { .. }
            | Self::InvalidRequest(_) => BAD_REQUEST,
            Self::MissingAuthKey
            | Self::WrongAuthKey
            | Self::SignatureRejected(_)
            | Self::AdminTokenRejected => UNAUTHORIZED,
            Self::AppDisabled => FORBIDDEN,
            Self::RateLimited { .. } => TOO_MANY_REQUESTS,
            Self::AppStore(e) => match e {
                AppStoreError::Unavailable(_) => UNAVAILABLE,
                AppStoreError::Conflict(_) | AppStoreError::ReadOnly => CONFLICT,
                AppStoreError::Invalid(_) => BAD_REQUEST,
            },
            Self::Timeout(_)
            | Self::AppLookup(_)
            | Self::CoreUnavailable(_)
            | Self::BusUnavailable(_) => UNAVAILABLE,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.class().0
    }

    /// The `reason` label of the rejection metric.
    pub fn reason(&self) -> &'static str {
        self.class().1
    }

    /// Pusher's error body, `{"error": message}`, with the condition's status.
    pub fn into_response(self) -> Response<Body> {
        switchyard_listener::error(self.status(), &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_statuses_are_those_callers_see() {
        let cases = [
            (
                ApiError::NoSuchEndpoint("/nope".into()),
                404,
                "no such endpoint: /nope",
            ),
            (
                ApiError::SignatureRejected(RestAuthError::Expired),
                401,
                "auth_timestamp is more than 600 seconds from server time",
            ),
            (
                ApiError::AppStore(AppStoreError::ReadOnly),
                409,
                "this app store is read-only: apps come from the config file; edit it and \
                 restart, or use the mysql or postgres app store",
            ),
            (
                ApiError::AppLookup(AppStoreError::Invalid("x".into())),
                503,
                "invalid app: x",
            ),
            (
                ApiError::InvalidChannelName {
                    name: "a b".into(),
                    source: ChannelNameError::InvalidCharacter(' '),
                },
                400,
                "channel \"a b\": channel name contains an invalid character: ' '",
            ),
            (
                ApiError::Timeout(Duration::from_secs(15)),
                503,
                "request not handled within 15s; try again",
            ),
            (
                ApiError::BusUnavailable(BusError::Unavailable("down".into())),
                503,
                "event bus unavailable: bus unavailable: down",
            ),
        ];
        for (error, status, message) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.to_string(), message);
        }
    }
}
