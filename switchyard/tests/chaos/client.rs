//! One client of the workload, run by its own task as a pusher-js app would run: it connects
//! (retrying while the edge is down), subscribes to the feed, joins the presence channel, may
//! sign in, and then reads every frame, tracking the presence member list exactly as pusher-js
//! does and counting each numbered trigger. Its state is shared with the fleet for checking.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchyard_protocol::signature::{presence_string, signin_string};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::cluster::{CLUSTER_KEY, CLUSTER_SECRET};
use crate::load::LOAD_EVENT;
use crate::support::{data_of, event_of, token};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a client keeps trying to connect while its edge does not answer.
const CONNECT_FOR: Duration = Duration::from_secs(30);
const RECONNECT_PAUSE: Duration = Duration::from_millis(300);
/// How long joining (feed, presence, sign-in) may take once connected.
const JOIN_BOUND: Duration = Duration::from_secs(10);
const STEP_BOUND: Duration = Duration::from_secs(5);

/// Who a client is and what it joins.
#[derive(Debug, Clone)]
pub struct Spec {
    pub user: String,
    pub edge: usize,
    pub addr: SocketAddr,
    pub feed: String,
    pub presence: String,
    pub signs_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Connecting,
    Joining,
    /// Subscribed to both channels (and signed in, if it signs in).
    Live,
    /// Left on its own (closed by the client).
    Left,
    /// Closed by the server, dropped, or refused.
    Closed {
        was_live: bool,
        why: String,
    },
}

/// What a client knows, as its app would.
#[derive(Debug)]
pub struct Tracked {
    pub phase: Phase,
    pub closed_at: Option<Instant>,
    /// The presence member list as pusher-js keeps it.
    pub members: BTreeSet<String>,
    /// How often each trigger number arrived.
    pub received: HashMap<u64, u32>,
    feed_ok: bool,
    presence_ok: bool,
    signed_in: bool,
}

impl Tracked {
    pub fn new() -> Tracked {
        Tracked {
            phase: Phase::Connecting,
            closed_at: None,
            members: BTreeSet::new(),
            received: HashMap::new(),
            feed_ok: false,
            presence_ok: false,
            signed_in: false,
        }
    }

    fn close(&mut self, why: String) {
        if matches!(self.phase, Phase::Left | Phase::Closed { .. }) {
            return;
        }
        let was_live = self.phase == Phase::Live;
        self.phase = Phase::Closed { was_live, why };
        self.closed_at = Some(Instant::now());
    }
}

/// Applies one server frame to a client's state as pusher-js would: the member list is reset
/// from `subscription_succeeded`'s presence hash, added to on `member_added` and removed from
/// on `member_removed`. Err: the frame refuses the client (it then closes).
pub fn apply(t: &mut Tracked, spec: &Spec, frame: &Value) -> Result<(), String> {
    let channel = frame["channel"].as_str().unwrap_or("");
    let on_presence = channel == spec.presence;
    match event_of(frame) {
        "pusher_internal:subscription_succeeded" if on_presence => {
            let hash = data_of(frame)["presence"]["hash"].clone();
            let hash = hash
                .as_object()
                .ok_or_else(|| format!("no presence hash in {frame}"))?;
            t.members = hash.keys().cloned().collect();
            t.presence_ok = true;
        }
        "pusher_internal:subscription_succeeded" if channel == spec.feed => t.feed_ok = true,
        "pusher_internal:member_added" if on_presence => {
            if let Some(user) = data_of(frame)["user_id"].as_str() {
                t.members.insert(user.to_owned());
            }
        }
        "pusher_internal:member_removed" if on_presence => {
            if let Some(user) = data_of(frame)["user_id"].as_str() {
                t.members.remove(user);
            }
        }
        "pusher:signin_success" => t.signed_in = true,
        "pusher:subscription_error" | "pusher:error" => return Err(format!("refused: {frame}")),
        event if event == LOAD_EVENT && channel == spec.feed => {
            let n = frame["data"].as_str().and_then(|d| d.parse().ok());
            let n = n.ok_or_else(|| format!("unnumbered trigger {frame}"))?;
            *t.received.entry(n).or_default() += 1;
        }
        _ => {}
    }
    if t.phase == Phase::Joining && t.feed_ok && t.presence_ok && (t.signed_in || !spec.signs_in) {
        t.phase = Phase::Live;
    }
    Ok(())
}

/// Starts a client's task; sending on the returned sender makes it leave.
pub fn spawn(spec: Spec) -> (Arc<Mutex<Tracked>>, oneshot::Sender<()>) {
    let state = Arc::new(Mutex::new(Tracked::new()));
    let (leave, left) = oneshot::channel();
    tokio::spawn(run(spec, state.clone(), left));
    (state, leave)
}

async fn run(spec: Spec, state: Arc<Mutex<Tracked>>, mut leave: oneshot::Receiver<()>) {
    let set = |f: &dyn Fn(&mut Tracked)| f(&mut state.lock().expect("lock"));
    let given_up = Instant::now() + CONNECT_FOR;
    let (mut ws, socket_id) = loop {
        tokio::select! {
            _ = &mut leave => return set(&|t| t.phase = Phase::Left),
            connected = connect(spec.addr) => match connected {
                Ok(pair) => break pair,
                Err(why) if Instant::now() > given_up => return set(&|t| t.close(why.clone())),
                Err(_) => tokio::time::sleep(RECONNECT_PAUSE).await,
            }
        }
    };
    set(&|t| t.phase = Phase::Joining);
    if let Err(why) = send_joins(&mut ws, &spec, &socket_id).await {
        return set(&|t| t.close(why.clone()));
    }
    let join_by = tokio::time::Instant::now() + JOIN_BOUND;
    loop {
        let joining = state.lock().expect("lock").phase == Phase::Joining;
        let why = tokio::select! {
            _ = &mut leave => {
                set(&|t| t.phase = Phase::Left);
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return;
            }
            () = tokio::time::sleep_until(join_by), if joining => format!("not joined within {JOIN_BOUND:?}"),
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    if event_of(&frame) == "pusher:ping" {
                        let pong = json!({"event": "pusher:pong", "data": {}}).to_string();
                        let _ = tokio::time::timeout(STEP_BOUND, ws.send(Message::text(pong))).await;
                    }
                    match apply(&mut state.lock().expect("lock"), &spec, &frame) {
                        Ok(()) => continue,
                        Err(why) => why,
                    }
                }
                Some(Ok(Message::Close(Some(f)))) => format!("closed {} {}", u16::from(f.code), f.reason),
                Some(Ok(Message::Close(None))) => "closed without a code".to_owned(),
                Some(Ok(_)) => continue,
                Some(Err(e)) => format!("dropped: {e}"),
                None => "dropped: stream ended".to_owned(),
            },
        };
        set(&|t| t.close(why.clone()));
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        return;
    }
}

/// Opens the WebSocket and reads `connection_established`; returns the socket id.
async fn connect(addr: SocketAddr) -> Result<(Ws, String), String> {
    let url =
        format!("ws://{addr}/app/{CLUSTER_KEY}?protocol=7&client=js&version=8.6.0&flash=false");
    let handshake = tokio::time::timeout(STEP_BOUND, tokio_tungstenite::connect_async(url));
    let (mut ws, _) = handshake
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| format!("handshake: {e}"))?;
    let first = tokio::time::timeout(STEP_BOUND, ws.next()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return Err(format!("no connection_established: {first:?}"));
    };
    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
    let socket_id = data_of(&frame)["socket_id"].as_str().map(str::to_owned);
    let socket_id = socket_id.ok_or_else(|| format!("no socket_id in {frame}"))?;
    Ok((ws, socket_id))
}

/// Subscribes to the feed, joins presence and signs in, without waiting for answers.
async fn send_joins(ws: &mut Ws, spec: &Spec, socket_id: &str) -> Result<(), String> {
    let channel_data = json!({"user_id": spec.user, "user_info": {"name": spec.user}}).to_string();
    let presence_auth = token(
        CLUSTER_SECRET,
        CLUSTER_KEY,
        &presence_string(socket_id, &spec.presence, &channel_data),
    );
    let mut frames = vec![
        json!({"event": "pusher:subscribe", "data": {"channel": spec.feed}}),
        json!({"event": "pusher:subscribe", "data": {
            "channel": spec.presence, "auth": presence_auth, "channel_data": channel_data}}),
    ];
    if spec.signs_in {
        let user_data = json!({"id": spec.user}).to_string();
        let auth = token(
            CLUSTER_SECRET,
            CLUSTER_KEY,
            &signin_string(socket_id, &user_data),
        );
        frames.push(
            json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
        );
    }
    for frame in frames {
        let sent =
            tokio::time::timeout(STEP_BOUND, ws.send(Message::text(frame.to_string()))).await;
        sent.map_err(|_| "send timed out".to_owned())?
            .map_err(|e| format!("send: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            user: "u1".into(),
            edge: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            feed: "feed".into(),
            presence: "presence-p".into(),
            signs_in: false,
        }
    }

    fn applied(t: &mut Tracked, spec: &Spec, frame: Value) {
        apply(t, spec, &frame).expect("the frame applies");
    }

    fn frame(event: &str, channel: &str, data: Value) -> Value {
        json!({"event": event, "channel": channel, "data": data.to_string()})
    }

    #[test]
    fn members_are_tracked_as_pusher_js_tracks_them() {
        let (spec, mut t) = (spec(), Tracked::new());
        t.phase = Phase::Joining;
        let hash =
            json!({"presence": {"ids": ["u1", "u2"], "hash": {"u1": {}, "u2": {}}, "count": 2}});
        applied(
            &mut t,
            &spec,
            frame("pusher_internal:subscription_succeeded", "presence-p", hash),
        );
        assert_eq!(t.phase, Phase::Joining, "the feed is not subscribed yet");
        applied(
            &mut t,
            &spec,
            frame("pusher_internal:subscription_succeeded", "feed", json!({})),
        );
        assert_eq!(t.phase, Phase::Live);
        applied(
            &mut t,
            &spec,
            frame(
                "pusher_internal:member_added",
                "presence-p",
                json!({"user_id": "u3"}),
            ),
        );
        applied(
            &mut t,
            &spec,
            frame(
                "pusher_internal:member_removed",
                "presence-p",
                json!({"user_id": "u2"}),
            ),
        );
        applied(
            &mut t,
            &spec,
            frame(
                "pusher_internal:member_removed",
                "other",
                json!({"user_id": "u1"}),
            ),
        );
        let expected: BTreeSet<String> = ["u1", "u3"].map(String::from).into();
        assert_eq!(t.members, expected);
    }

    #[test]
    fn triggers_are_counted_and_refusals_fail() {
        let (spec, mut t) = (spec(), Tracked::new());
        let load = json!({"event": LOAD_EVENT, "channel": "feed", "data": "7"});
        applied(&mut t, &spec, load.clone());
        applied(&mut t, &spec, load.clone());
        assert_eq!(t.received.get(&7), Some(&2));
        let refused = json!({"event": "pusher:subscription_error", "channel": "feed", "data": {}});
        assert!(apply(&mut t, &spec, &refused).is_err());
    }
}
