//! `GrpcCore`: the `EdgeCore` and `ApiCore` traits over gRPC, for edges and the API in the
//! distributed mode (the methods are generated in `ops.rs`). Callers cannot tell it from the
//! in-process `Core`.

use std::future::Future;
use std::time::{Duration, Instant};

use channel_core::CoreError;
use switchyard_telemetry::{metrics, trace, TraceParent};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tracing::{Instrument, Span};

use crate::convert::status_to_error;
use crate::v1::channel_core_client::ChannelCoreClient;
use crate::SERVICE;

/// Every call gives up after this long, so a hung core shows up as "unavailable" rather than
/// as a stuck subscribe or API request.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct GrpcCore {
    client: ChannelCoreClient<Channel>,
}

impl GrpcCore {
    /// Prepares a client for `url` (`http://host:port`). Connects lazily and reconnects by
    /// itself, so an edge can start before core and survive core restarts.
    pub fn new(url: &str) -> Result<GrpcCore, CoreError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| CoreError::Unavailable(format!("invalid core url {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true);
        Ok(GrpcCore {
            client: ChannelCoreClient::new(endpoint.connect_lazy()),
        })
    }

    /// One call of `method`: a client span whose W3C context travels in the request metadata
    /// (so core's spans join the caller's trace), the latency and failure metrics, and the
    /// status mapped back to a `CoreError`.
    pub(crate) async fn call<Req, Res, F, Fut>(
        &self,
        method: &'static str,
        req: Req,
        rpc: F,
    ) -> Result<Response<Res>, CoreError>
    where
        F: FnOnce(ChannelCoreClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Res>, Status>>,
    {
        let span = if trace::enabled() {
            tracing::info_span!(
                "grpc.client",
                otel.name = method,
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = SERVICE,
                rpc.method = method,
            )
        } else {
            Span::none()
        };
        let mut request = Request::new(req);
        if let Some(value) = trace::of(&span).and_then(|t| t.encode().parse().ok()) {
            request.metadata_mut().insert(TraceParent::HEADER, value);
        }
        let started = Instant::now();
        // Cloning a tonic client is cheap and shares the connection.
        let result = rpc(self.client.clone(), request).instrument(span).await;
        let timing = metrics::process().grpc_client.get(method);
        timing.latency.observe(started.elapsed());
        if result.is_err() {
            timing.errors.inc();
        }
        result.map_err(status_to_error)
    }
}
