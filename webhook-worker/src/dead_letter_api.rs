//! The worker's admin endpoints, served on its health port:
//!
//! - `GET /admin/dead-letters?limit=N` → `{"dead_letters":[…]}`, newest first (default 100);
//! - `POST /admin/dead-letters/replay` with `{"id":"…"}` or `{"all":true}` → `{"replayed":[ids]}`.
//!
//! Every request needs `Authorization: Bearer <token>`. Without a configured token the
//! endpoints do not exist (404), so a worker started without one exposes nothing new.
//! Answers are `(status, JSON)`, which `service` writes with the listener's helpers, so these
//! handlers are tested without a server. [`DeadLetterCommand`] offers the same two operations
//! to the command line.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dead_letter::{self, DeadLetterError, DeadLetters, Replay};
use crate::WebhookQueue;

/// Paths the admin handles; the health port routes these here.
pub const ADMIN_PREFIX: &str = "/admin/";
const LIST: &str = "/admin/dead-letters";
const REPLAY: &str = "/admin/dead-letters/replay";
const DEFAULT_LIMIT: usize = 100;
/// A replay body is a few dozen bytes; anything large is not one.
const MAX_BODY: usize = 4096;

pub struct DeadLetterApi {
    token: Option<String>,
    letters: Arc<dyn DeadLetters>,
    queue: Arc<dyn WebhookQueue>,
}

/// A replay request: exactly one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    id: Option<String>,
    #[serde(default)]
    all: bool,
}

impl DeadLetterApi {
    /// `token` `None` or empty turns the endpoints off.
    pub fn new(
        token: Option<String>,
        letters: Arc<dyn DeadLetters>,
        queue: Arc<dyn WebhookQueue>,
    ) -> DeadLetterApi {
        DeadLetterApi {
            token: token.filter(|t| !t.is_empty()),
            letters,
            queue,
        }
    }

    /// Answers one request under [`ADMIN_PREFIX`].
    pub async fn handle<B>(&self, req: Request<B>) -> (StatusCode, Value)
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_owned();
        let Some(token) = &self.token else {
            return error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}"));
        };
        if !authorized(token, &req) {
            return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        }
        match (req.method(), path.as_str()) {
            (&Method::GET, LIST) => self.list(req.uri().query()).await,
            (&Method::POST, REPLAY) => match read_body(req).await {
                Ok(body) => self.replay(&body).await,
                Err(answer) => answer,
            },
            (_, LIST | REPLAY) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            _ => error(StatusCode::NOT_FOUND, &format!("no such endpoint: {path}")),
        }
    }

    async fn list(&self, query: Option<&str>) -> (StatusCode, Value) {
        let limit = match limit(query) {
            Ok(limit) => limit,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        match self.letters.list(limit).await {
            Ok(letters) => (StatusCode::OK, json!({ "dead_letters": letters })),
            Err(e) => failed(&e),
        }
    }

    async fn replay(&self, body: &[u8]) -> (StatusCode, Value) {
        let which = match serde_json::from_slice::<ReplayBody>(body) {
            Ok(ReplayBody {
                id: Some(id),
                all: false,
            }) => Replay::One(id),
            Ok(ReplayBody {
                id: None,
                all: true,
            }) => Replay::All,
            _ => {
                let message = r#"expected {"id":"…"} or {"all":true}"#;
                return error(StatusCode::BAD_REQUEST, message);
            }
        };
        match dead_letter::replay(&*self.letters, &*self.queue, &which).await {
            Ok(ids) => (StatusCode::OK, json!({ "replayed": ids })),
            Err(e) => failed(&e),
        }
    }
}

/// `webhook-worker dead-letters …`: the same two operations from a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterCommand {
    List { limit: usize },
    Replay(Replay),
}

impl DeadLetterCommand {
    /// Parses the words after `dead-letters`: `list [--limit N]` or `replay (ID|--all)`, each
    /// with an optional `--config FILE`, which is returned beside the command.
    pub fn parse(args: &[String]) -> Result<(DeadLetterCommand, Option<String>), String> {
        let mut config = None;
        let mut words = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--config" | "-c" | "--limit" => {
                    let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                    if arg == "--limit" {
                        words.push(format!("--limit={value}"));
                    } else {
                        config = Some(value.clone());
                    }
                }
                _ => words.push(arg.clone()),
            }
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let command = match words.as_slice() {
            ["list"] => DeadLetterCommand::List {
                limit: DEFAULT_LIMIT,
            },
            ["list", limit] => match limit.strip_prefix("--limit=").map(str::parse) {
                Some(Ok(limit)) => DeadLetterCommand::List { limit },
                _ => return Err(format!("bad list argument {limit:?}")),
            },
            ["replay", "--all"] => DeadLetterCommand::Replay(Replay::All),
            ["replay", id] if !id.starts_with('-') => {
                DeadLetterCommand::Replay(Replay::One((*id).to_owned()))
            }
            _ => return Err(format!("unexpected arguments {words:?}")),
        };
        Ok((command, config))
    }

    /// Runs the command; returns what to print, one JSON object per line: a letter per line
    /// for `list`, `{"replayed":"<id>"}` per letter for `replay`.
    pub async fn run(
        &self,
        letters: &dyn DeadLetters,
        queue: &dyn WebhookQueue,
    ) -> Result<Vec<String>, DeadLetterError> {
        let lines = match self {
            DeadLetterCommand::List { limit } => letters
                .list(*limit)
                .await?
                .iter()
                .map(|letter| json!(letter).to_string())
                .collect(),
            DeadLetterCommand::Replay(which) => dead_letter::replay(letters, queue, which)
                .await?
                .iter()
                .map(|id| json!({ "replayed": id }).to_string())
                .collect(),
        };
        Ok(lines)
    }
}

/// `Bearer <token>`, compared in constant time so the answer's timing does not reveal how
/// much of a guess was right.
fn authorized<B>(token: &str, req: &Request<B>) -> bool {
    let Some(given) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn limit(query: Option<&str>) -> Result<usize, String> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("limit="));
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) => n
            .parse()
            .map_err(|_| format!("limit must be a whole number, not {n:?}")),
    }
}

async fn read_body<B>(req: Request<B>) -> Result<Bytes, (StatusCode, Value)>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("unreadable body: {e}"),
        )),
    }
}

/// The one mapping of dead-letter errors to statuses.
fn failed(e: &DeadLetterError) -> (StatusCode, Value) {
    let status = match e {
        DeadLetterError::NotFound(_) => StatusCode::NOT_FOUND,
        DeadLetterError::Unavailable(_) | DeadLetterError::Queue(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    error(status, &e.to_string())
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<()> {
        let mut builder = Request::get(LIST);
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(authorized("t0ken", &request(Some("Bearer t0ken"))));
        assert!(authorized("t0ken", &request(Some("bearer t0ken"))));
        assert!(!authorized("t0ken", &request(Some("Bearer t0ke"))));
        assert!(!authorized("t0ken", &request(Some("Basic t0ken"))));
        assert!(!authorized("t0ken", &request(None)));
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_with_or_without_a_config() {
        let parse = |line: &str| DeadLetterCommand::parse(&words(line));
        assert_eq!(
            parse("list --config a.toml"),
            Ok((
                DeadLetterCommand::List { limit: 100 },
                Some("a.toml".into())
            ))
        );
        assert_eq!(
            parse("list --limit 5"),
            Ok((DeadLetterCommand::List { limit: 5 }, None))
        );
        assert_eq!(
            parse("replay -c b.toml 1-0"),
            Ok((
                DeadLetterCommand::Replay(Replay::One("1-0".into())),
                Some("b.toml".into())
            ))
        );
        assert_eq!(
            parse("replay --all"),
            Ok((DeadLetterCommand::Replay(Replay::All), None))
        );
        for bad in [
            "",
            "replay",
            "replay --bogus",
            "list --limit x",
            "list --config",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limit_defaults_and_rejects_garbage() {
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some("x=1&limit=5")), Ok(5));
        assert!(limit(Some("limit=-1")).is_err());
    }
}
