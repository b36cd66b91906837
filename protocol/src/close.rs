//! WebSocket close codes and `pusher:error` codes from the Pusher protocol.
//!
//! Pusher clients decide whether to reconnect from the code alone (4000–4099: give up,
//! 4100–4199: back off, 4200–4299: reconnect now), so each condition maps to exactly one code.

/// Every close or error code the server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    TlsOnly,
    AppNotFound,
    AppDisabled,
    OverConnectionQuota,
    PathNotFound,
    InvalidVersion,
    UnsupportedProtocol,
    NoProtocolVersion,
    Unauthorized,
    OverCapacity,
    ReconnectImmediately,
    PongNotReceived,
    ClosedAfterInactivity,
    ClientEventRejected,
    WatchlistTooLarge,
    /// Generic non-fatal error answered with `pusher:error` (bad JSON, unknown event, bad auth).
    GenericError,
}

const ALL: [CloseCode; 15] = [
    CloseCode::TlsOnly,
    CloseCode::AppNotFound,
    CloseCode::AppDisabled,
    CloseCode::OverConnectionQuota,
    CloseCode::PathNotFound,
    CloseCode::InvalidVersion,
    CloseCode::UnsupportedProtocol,
    CloseCode::NoProtocolVersion,
    CloseCode::Unauthorized,
    CloseCode::OverCapacity,
    CloseCode::ReconnectImmediately,
    CloseCode::PongNotReceived,
    CloseCode::ClosedAfterInactivity,
    CloseCode::ClientEventRejected,
    CloseCode::WatchlistTooLarge,
];

impl CloseCode {
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::TlsOnly => 4000,
            CloseCode::AppNotFound => 4001,
            CloseCode::AppDisabled => 4003,
            CloseCode::OverConnectionQuota => 4004,
            CloseCode::PathNotFound => 4005,
            CloseCode::InvalidVersion => 4006,
            CloseCode::UnsupportedProtocol => 4007,
            CloseCode::NoProtocolVersion => 4008,
            CloseCode::Unauthorized => 4009,
            CloseCode::OverCapacity => 4100,
            CloseCode::ReconnectImmediately => 4200,
            CloseCode::PongNotReceived => 4201,
            CloseCode::ClosedAfterInactivity => 4202,
            CloseCode::ClientEventRejected => 4301,
            CloseCode::WatchlistTooLarge => 4302,
            CloseCode::GenericError => 4000,
        }
    }

    /// The condition a code stands for (the generic error's 4000 reads as `TlsOnly`).
    pub fn from_code(code: u16) -> Option<CloseCode> {
        ALL.iter().copied().find(|c| c.code() == code)
    }

    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::TlsOnly => "Application only accepts SSL connections",
            CloseCode::AppNotFound => "Application does not exist",
            CloseCode::AppDisabled => "Application disabled",
            CloseCode::OverConnectionQuota => "Application is over connection quota",
            CloseCode::PathNotFound => "Path not found",
            CloseCode::InvalidVersion => "Invalid version string format",
            CloseCode::UnsupportedProtocol => "Unsupported protocol version",
            CloseCode::NoProtocolVersion => "No protocol version supplied",
            CloseCode::Unauthorized => "Connection is unauthorized",
            CloseCode::OverCapacity => "Over capacity",
            CloseCode::ReconnectImmediately => "Generic reconnect immediately",
            CloseCode::PongNotReceived => "Pong reply not received",
            CloseCode::ClosedAfterInactivity => "Closed after inactivity",
            CloseCode::ClientEventRejected => "Client event rejected due to rate limit",
            CloseCode::WatchlistTooLarge => "Watchlist limit exceeded",
            CloseCode::GenericError => "Error",
        }
    }

    /// The `reason` label of the rejection metric for a refusal with this code. Dashboards and
    /// alerts match these strings, so they change only together with them.
    pub const fn label(self) -> &'static str {
        match self {
            CloseCode::TlsOnly => "tls_only",
            CloseCode::AppNotFound => "app_not_found",
            CloseCode::AppDisabled => "app_disabled",
            CloseCode::OverConnectionQuota => "over_connection_quota",
            CloseCode::PathNotFound => "path_not_found",
            CloseCode::InvalidVersion => "invalid_version",
            CloseCode::UnsupportedProtocol => "unsupported_protocol",
            CloseCode::NoProtocolVersion => "no_protocol_version",
            CloseCode::Unauthorized => "unauthorized",
            CloseCode::OverCapacity => "over_capacity",
            CloseCode::ReconnectImmediately => "reconnect",
            CloseCode::PongNotReceived => "pong_not_received",
            CloseCode::ClosedAfterInactivity => "inactive",
            CloseCode::ClientEventRejected => "client_event_rejected",
            CloseCode::WatchlistTooLarge => "watchlist_too_large",
            // Named after its most common cause, a frame that could not be parsed.
            CloseCode::GenericError => "invalid_frame",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fall_in_the_ranges_clients_react_to() {
        assert_eq!(CloseCode::AppNotFound.code(), 4001);
        assert_eq!(CloseCode::OverCapacity.code(), 4100);
        assert_eq!(CloseCode::PongNotReceived.code(), 4201);
        assert_eq!(CloseCode::ClientEventRejected.code(), 4301);
        assert_eq!(CloseCode::from_code(4100), Some(CloseCode::OverCapacity));
        assert_eq!(CloseCode::from_code(1000), None);
    }

    #[test]
    fn each_code_has_its_own_metric_label() {
        let every: Vec<CloseCode> = ALL
            .iter()
            .copied()
            .chain([CloseCode::GenericError])
            .collect();
        let labels: std::collections::HashSet<&str> = every.iter().map(|c| c.label()).collect();
        assert_eq!(labels.len(), every.len(), "labels must not collide");
        assert!(labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert_eq!(CloseCode::ReconnectImmediately.label(), "reconnect");
        assert_eq!(CloseCode::ClosedAfterInactivity.label(), "inactive");
        assert_eq!(CloseCode::GenericError.label(), "invalid_frame");
        assert_eq!(CloseCode::Unauthorized.label(), "unauthorized");
    }
}
