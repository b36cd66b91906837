//! Durations as the file writes them: whole seconds in keys named `*_secs`, milliseconds in
//! keys named `*_ms`. They are read straight into `Duration`, so the unit is decided here once
//! and no caller can convert it twice or mix seconds up with milliseconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub(crate) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}
