//! The Pusher Channels wire protocol (version 7) as pure data transformations.
//!
//! Nothing here performs I/O or knows about tokio: every function takes bytes or strings and
//! returns values, so the rules can be tested with golden bytes and the published vectors.

pub mod channel;
pub mod close;
pub mod frame;
pub mod handshake;
pub mod presence;
pub mod rest;
pub mod signature;
pub mod socket_id;
pub mod user;

pub use channel::{Channel, ChannelKind, ChannelNameError};
pub use close::CloseCode;
pub use frame::{ClientFrame, FrameError};
