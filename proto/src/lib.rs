//! The gRPC contract between edges / the API and channel-core (`switchyard/v1/core.proto`),
//! the server that exposes a core over it and the client that implements `EdgeCore` and
//! `ApiCore` on top of it, both generated from one table of operations (`ops.rs`).

mod client;
mod convert;
mod ops;
mod server;

pub use client::GrpcCore;
pub use server::{serve, CoreService};

/// The gRPC service name, as spans name it (`rpc.service`).
const SERVICE: &str = "switchyard.v1.ChannelCore";

#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod v1 {
    include!("generated/switchyard.v1.rs");
}
