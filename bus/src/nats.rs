//! The distributed Bus: core NATS, one subject per (app, channel) and per (app, user).
//!
//! The payload is the finished frame, sent as-is; routing data rides in headers so the frame
//! is never re-encoded. Core NATS is at-most-once: a frame published while a subscriber's
//! connection is down is lost for it, which matches Pusher (no replay); cache channels keep
//! their last event in channel-core, not on the bus.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, HeaderMap, HeaderName, HeaderValue, Subscriber};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use switchyard_telemetry::{loggable_url, metrics, TraceParent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::{Bus, BusError, Control, Envelope, Subscription};

/// Bounds one connection attempt to one server (TCP, TLS, INFO/CONNECT).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a publish may wait for room in async-nats' command queue (2,048 commands), which
/// only fills while the connection is down or the socket is backed up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `subscribe` waits for the server to confirm the new interest.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A dead peer that sent no RST is noticed after three unanswered pings: about 15 s here
/// instead of three minutes with the 60 s default, so reconnecting starts sooner.
const PING_INTERVAL: Duration = Duration::from_secs(5);

const EXCEPT_HEADER: HeaderName = HeaderName::from_static("Sy-Except");
const CONTROL_HEADER: HeaderName = HeaderName::from_static("Sy-Control");
const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static("traceparent");
const ACCEPTED_AT_HEADER: HeaderName = HeaderName::from_static("Sy-Accepted-At");
const SEQ_HEADER: HeaderName = HeaderName::from_static("Sy-Seq");
const TERMINATE_USER: &str = "terminate-user";

/// A [`Bus`] over one NATS connection. Cloning shares the connection.
///
/// Publish and subscribe calls on one `NatsBus` reach the server in call order, so the trait's
/// "before/after `subscribe` returned" contract holds exactly for them. Across connections,
/// "published" means "processed by the server": a publish that has returned may still sit in
/// the other connection's socket buffer. In a NATS cluster, interest spreads between servers
/// asynchronously, so a publish through another server right after `subscribe` can miss it.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: Client,
    /// Bumped each time the connection comes back (see [`Bus::reconnects`]).
    reconnects: tokio::sync::watch::Receiver<u64>,
}

impl NatsBus {
    /// Header carrying [`Envelope::except_socket`].
    pub const EXCEPT_HEADER: &'static str = "Sy-Except";
    /// Header carrying [`Envelope::control`]; its only value today is `terminate-user`.
    pub const CONTROL_HEADER: &'static str = "Sy-Control";
    /// The W3C trace context of [`Envelope::trace`]: the publisher's span, which the
    /// receiving edge's spans continue.
    pub const TRACEPARENT_HEADER: &'static str = "traceparent";
    /// [`Envelope::accepted_at_us`] in decimal.
    pub const ACCEPTED_AT_HEADER: &'static str = "Sy-Accepted-At";
    /// [`Envelope::seq`] in decimal.
    pub const SEQ_HEADER: &'static str = "Sy-Seq";

    /// Waits until everything published so far has been written to the server: for a
    /// short-lived process (the CLI) that must not exit with a message still buffered.
    pub async fn flush(&self) -> Result<(), BusError> {
        match timeout(PUBLISH_TIMEOUT, self.client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!("NATS flush: {e}"))),
            Err(_) => Err(unavailable("NATS flush timed out".to_owned())),
        }
    }

    /// Connects to `url` (or a comma-separated list of servers of one cluster).
    ///
    /// Fails with [`BusError::Unavailable`] within a few seconds when no server answers, so a
    /// misconfigured service stops at startup instead of hanging. Once connected, the client
    /// reconnects forever and re-subscribes every live [`Subscription`] itself.
    pub async fn connect(url: &str) -> Result<NatsBus, BusError> {
        let servers: Vec<&str> = url.split(',').map(str::trim).collect();
        let shown = loggable_url(url);
        let (bump, reconnects) = tokio::sync::watch::channel(0u64);
        let options = ConnectOptions::new()
            .event_callback(move |event| {
                // Every connect counts, the first too: a subscriber treats any change as
                // "re-read", which costs nothing before it holds state. async-nats sends the
                // event before it re-subscribes, so a re-read should wait a moment.
                if let async_nats::Event::Connected = event {
                    bump.send_modify(|n| *n += 1);
                }
                std::future::ready(())
            })
            .name("switchyard")
            .connection_timeout(CONNECT_TIMEOUT)
            .ping_interval(PING_INTERVAL)
            .max_reconnects(None);
        // The outer bound also covers DNS, which `connection_timeout` does not.
        let bound = CONNECT_TIMEOUT * u32::try_from(servers.len()).unwrap_or(1).max(1)
            + Duration::from_secs(2);
        let client = timeout(bound, options.connect(servers))
            .await
            .map_err(|_| unavailable(format!("connecting to NATS at {shown} timed out")))?
            .map_err(|e| unavailable(format!("connecting to NATS at {shown}: {e}")))?;
        Ok(NatsBus { client, reconnects })
    }

    /// Fails fast instead of letting async-nats queue work for a connection that is down:
    /// queued publishes would go out late (or block once the queue is full) and a queued
    /// subscribe could not be confirmed anyway.
    fn ensure_connected(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            State::Pending | State::Disconnected => {
                Err(unavailable("not connected to NATS".to_owned()))
            }
        }
    }

    /// Returns once the server has processed everything this connection sent before.
    ///
    /// `Client::flush` only writes to the socket; it does not wait for the server. A message
    /// sent to a fresh inbox comes back only after the server has handled every earlier
    /// command on this connection, in particular the SUB just sent. This relies on echo,
    /// which stays on because an edge must receive its own client events too.
    async fn round_trip(&self) -> Result<(), BusError> {
        let inbox = self.client.new_inbox();
        let mut probe = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable(format!("NATS subscribe failed: {e}")))?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| unavailable(format!("NATS publish failed: {e}")))?;
        match timeout(SUBSCRIBE_TIMEOUT, probe.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(unavailable("NATS connection closed".to_owned())),
            Err(_) => Err(unavailable(
                "NATS server did not confirm the subscription in time".to_owned(),
            )),
        }
    }

    async fn send(&self, subject: &str, envelope: Envelope) -> Result<(), BusError> {
        self.ensure_connected()?;
        let headers = encode_headers(&envelope)?;
        let send = self
            .client
            .publish_with_headers(subject.to_owned(), headers, envelope.payload);
        match timeout(PUBLISH_TIMEOUT, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!("NATS publish on {subject}: {e}"))),
            Err(_) => Err(unavailable(format!(
                "NATS publish on {subject} timed out: connection backed up or down"
            ))),
        }
    }

    async fn try_subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        self.ensure_connected()?;
        let subscriber = self
            .client
            .subscribe(subject.to_owned())
            .await
            .map_err(|e| unavailable(format!("NATS subscribe to {subject}: {e}")))?;
        // On failure `subscriber` is dropped here, which unsubscribes.
        self.round_trip().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward(subscriber, tx));
        Ok(Subscription::new(rx, Box::new(Unsubscribe(task))))
    }
}

#[async_trait]
impl Bus for NatsBus {
    /// Returns once the frame is queued for the socket, not when the server has it: waiting
    /// for the server would cost a round trip per publish on the trigger path.
    async fn publish(&self, subject: &str, mut envelope: Envelope) -> Result<(), BusError> {
        let _span = crate::publish_span("nats", subject, &mut envelope);
        let sent = self.send(subject, envelope).await;
        let metrics = metrics::process();
        match sent {
            Ok(()) => metrics.bus_published.inc(),
            Err(_) => metrics.bus_errors.get("publish").inc(),
        }
        sent
    }

    fn is_connected(&self) -> bool {
        self.ensure_connected().is_ok()
    }

    fn reconnects(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reconnects.clone()
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        let subscribed = self.try_subscribe(subject).await;
        if subscribed.is_err() {
            metrics::process().bus_errors.get("subscribe").inc();
        }
        subscribed
    }
}

/// Moves messages from the NATS subscriber into the [`Subscription`]'s queue.
///
/// async-nats gives each subscriber a bounded queue and drops messages when it is full; this
/// task drains it into the unbounded queue the trait promises (see [`crate::MemoryBus`] for
/// why unbounded is right), so only a starved runtime could lose frames here.
async fn forward(mut subscriber: Subscriber, tx: mpsc::UnboundedSender<Envelope>) {
    let metrics = metrics::process();
    while let Some(message) = subscriber.next().await {
        match decode(message.headers.as_ref()) {
            Ok(routing) => {
                metrics.bus_received.inc();
                let envelope = Envelope {
                    payload: message.payload,
                    except_socket: routing.except_socket,
                    control: routing.control,
                    trace: routing.trace,
                    accepted_at_us: routing.accepted_at_us,
                    seq: routing.seq,
                };
                if tx.send(envelope).is_err() {
                    return;
                }
            }
            // Delivering it as a frame could write a control message's empty payload to
            // sockets; dropping one message is the lesser harm.
            Err(e) => {
                metrics.bus_errors.get("decode").inc();
                tracing::warn!(subject = %message.subject, error = %e, "bus message dropped");
            }
        }
    }
}

/// The [`Subscription`] guard: aborting the task drops the NATS subscriber, whose `Drop`
/// sends UNSUB, so the server stops routing the subject to this connection.
struct Unsubscribe(JoinHandle<()>);

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn encode_headers(envelope: &Envelope) -> Result<HeaderMap, BusError> {
    let mut headers = HeaderMap::new();
    if let Some(socket) = &envelope.except_socket {
        // A line break would end the header block early; socket ids never contain one, so
        // this is a caller bug rather than something to escape.
        let value: HeaderValue = socket
            .parse()
            .map_err(|e| unavailable(format!("except_socket cannot be sent: {e}")))?;
        headers.insert(EXCEPT_HEADER, value);
    }
    if let Some(control) = envelope.control {
        let value = match control {
            Control::TerminateUser => TERMINATE_USER,
        };
        headers.insert(CONTROL_HEADER, value);
    }
    if let Some(trace) = envelope.trace {
        headers.insert(TRACEPARENT_HEADER, trace.encode().as_str());
    }
    if let Some(at) = envelope.accepted_at_us {
        headers.insert(ACCEPTED_AT_HEADER, at.to_string().as_str());
    }
    if let Some(seq) = envelope.seq {
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
    }
    Ok(headers)
}

/// The envelope's fields that travel in headers.
#[derive(Debug, Default, PartialEq, Eq)]
struct Routing {
    except_socket: Option<String>,
    control: Option<Control>,
    trace: Option<TraceParent>,
    accepted_at_us: Option<u64>,
    seq: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
enum DecodeError {
    #[error("unknown {CONTROL} value {0:?}", CONTROL = NatsBus::CONTROL_HEADER)]
    UnknownControl(String),
}

/// Headers back into routing fields. Missing headers mean "deliver to everyone"; an unknown
/// control value is an error because a newer publisher meant something this node cannot do.
/// A malformed trace context or timestamp only loses the trace link or the latency sample.
fn decode(headers: Option<&HeaderMap>) -> Result<Routing, DecodeError> {
    let Some(headers) = headers else {
        return Ok(Routing::default());
    };
    let except_socket = headers
        .get(EXCEPT_HEADER)
        .map(|value| value.as_str().to_owned());
    let control = match headers.get(CONTROL_HEADER).map(HeaderValue::as_str) {
        None => None,
        Some(TERMINATE_USER) => Some(Control::TerminateUser),
        Some(other) => return Err(DecodeError::UnknownControl(other.to_owned())),
    };
    let trace = headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| TraceParent::parse(value.as_str()));
    let accepted_at_us = headers
        .get(ACCEPTED_AT_HEADER)
        .and_then(|value| value.as_str().parse().ok());
    // A malformed number is read as missing: the edge then treats the event as untracked.
    let seq = headers
        .get(SEQ_HEADER)
        .and_then(|value| value.as_str().parse().ok());
    Ok(Routing {
        except_socket,
        control,
        trace,
        accepted_at_us,
        seq,
    })
}

fn unavailable(message: String) -> BusError {
    BusError::Unavailable(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_agree() {
        assert_eq!(EXCEPT_HEADER.to_string(), NatsBus::EXCEPT_HEADER);
        assert_eq!(CONTROL_HEADER.to_string(), NatsBus::CONTROL_HEADER);
        assert_eq!(TRACEPARENT_HEADER.to_string(), NatsBus::TRACEPARENT_HEADER);
        assert_eq!(ACCEPTED_AT_HEADER.to_string(), NatsBus::ACCEPTED_AT_HEADER);
        assert_eq!(SEQ_HEADER.to_string(), NatsBus::SEQ_HEADER);
    }

    #[test]
    fn headers_round_trip() {
        let envelope = Envelope {
            payload: "x".into(),
            except_socket: Some("123.456".to_owned()),
            control: Some(Control::TerminateUser),
            trace: Some(TraceParent {
                trace_id: 7,
                span_id: 9,
                sampled: true,
            }),
            accepted_at_us: Some(1_700_000_000_000_000),
            seq: Some(42),
        };
        let headers = encode_headers(&envelope).expect("encode");
        assert_eq!(
            headers
                .get(NatsBus::CONTROL_HEADER)
                .map(HeaderValue::as_str),
            Some("terminate-user")
        );
        assert_eq!(
            headers
                .get(NatsBus::TRACEPARENT_HEADER)
                .map(HeaderValue::as_str),
            Some("00-00000000000000000000000000000007-0000000000000009-01")
        );
        let decoded = decode(Some(&headers)).expect("decode");
        assert_eq!(
            decoded,
            Routing {
                except_socket: envelope.except_socket,
                control: envelope.control,
                trace: envelope.trace,
                accepted_at_us: envelope.accepted_at_us,
                seq: Some(42),
            }
        );
    }

    #[test]
    fn a_plain_frame_has_no_headers() {
        let headers = encode_headers(&Envelope::frame("x", None)).expect("encode");
        assert!(headers.is_empty());
        assert_eq!(decode(Some(&headers)).expect("decode"), Routing::default());
        assert_eq!(decode(None).expect("decode"), Routing::default());
    }

    #[test]
    fn a_malformed_trace_context_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(NatsBus::TRACEPARENT_HEADER, "garbage");
        headers.insert(NatsBus::ACCEPTED_AT_HEADER, "soon");
        assert_eq!(decode(Some(&headers)).expect("decode"), Routing::default());
    }

    #[test]
    fn unknown_control_is_an_error_not_a_panic() {
        let mut headers = HeaderMap::new();
        headers.insert(NatsBus::CONTROL_HEADER, "reboot-universe");
        headers.insert("Unrelated", "1");
        assert!(decode(Some(&headers)).is_err());
    }

    #[test]
    fn line_breaks_in_except_socket_are_refused() {
        let envelope = Envelope::frame("x", Some("1.2\r\nPUB evil 0".to_owned()));
        assert!(encode_headers(&envelope).is_err());
    }
}
