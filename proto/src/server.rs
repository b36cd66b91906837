//! Serves a core (the real `Core`) over gRPC; the RPC methods are generated in `ops.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use channel_core::{ApiCore, EdgeCore};
use switchyard_telemetry::{metrics, trace, TraceParent};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span};

use crate::v1::channel_core_server::ChannelCoreServer;
use crate::SERVICE;

pub struct CoreService<C> {
    pub(crate) core: Arc<C>,
}

impl<C: EdgeCore + ApiCore + 'static> CoreService<C> {
    pub fn new(core: Arc<C>) -> CoreService<C> {
        CoreService { core }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Serves one call of `method`: continues the caller's trace from the request metadata and
/// records the latency and failure metrics.
pub(crate) async fn serve_call<T, R, F, Fut>(
    method: &'static str,
    req: Request<T>,
    handle: F,
) -> Reply<R>
where
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = Reply<R>>,
{
    let span = if trace::enabled() {
        tracing::info_span!(
            "grpc.server",
            otel.name = method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = SERVICE,
            rpc.method = method,
        )
    } else {
        Span::none()
    };
    let parent = req
        .metadata()
        .get(TraceParent::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    if let Some(parent) = parent {
        trace::set_parent(&span, parent);
    }
    let started = Instant::now();
    let reply = handle(req.into_inner()).instrument(span).await;
    let timing = metrics::process().grpc_server.get(method);
    timing.latency.observe(started.elapsed());
    if reply.is_err() {
        timing.errors.inc();
    }
    reply
}

/// Serves `core` over gRPC on `listener` until `shutdown`.
pub async fn serve<C: EdgeCore + ApiCore + 'static>(
    listener: tokio::net::TcpListener,
    core: Arc<C>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(ChannelCoreServer::new(CoreService::new(core)))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}
