//! `switchyard apps …`: managing apps in the configured app store from the command line.
//!
//! Parsing is pure ([`AppsCommand::parse`]); [`AppsCommand::run`] does the store work and
//! returns the lines to print. Secrets are printed only by `create`, `rotate-secret` and
//! `show --show-secret`.

use serde_json::{Map, Value};
use switchyard_apps::{changes, App, AppAdmin, AppStoreError};

pub const USAGE: &str = "usage: switchyard apps [--config FILE] COMMAND

  list [--show-secrets]                 every app, one JSON object per line
  show ID [--show-secret]               one app as JSON
  create ID [--key K] [--secret S] [--set FIELD=VALUE]...
                                        a new app; key and secret are generated when left out
  update ID --set FIELD=VALUE [--set FIELD=VALUE]...
                                        change settings (VALUE is JSON, or else a string)
  enable ID | disable ID                a disabled app's connections close with 4003
  rotate-secret ID                      a new secret, printed once

Needs [app_store] backend = \"mysql\" or \"postgres\" for changes; the file backend is read-only.
Changes are announced over NATS ([cluster] nats_url) when it is reachable; every service
picks them up within [app_store] cache_ttl_ms in any case.";

#[derive(Debug, Clone, PartialEq)]
pub enum AppsCommand {
    List {
        show_secrets: bool,
    },
    Show {
        id: String,
        show_secret: bool,
    },
    Create {
        id: String,
        fields: Map<String, Value>,
    },
    Update {
        id: String,
        fields: Map<String, Value>,
    },
    SetEnabled {
        id: String,
        enabled: bool,
    },
    RotateSecret {
        id: String,
    },
}

impl AppsCommand {
    /// Parses the words after `apps`; returns the command and the `--config` path.
    pub fn parse(args: &[String]) -> Result<(AppsCommand, Option<String>), String> {
        let mut config = None;
        let mut words = Vec::new();
        let mut fields = Map::new();
        let mut flags = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--config" | "-c" => config = Some(value()?.clone()),
                "--key" | "--secret" => {
                    let v = value()?.clone();
                    fields.insert(arg[2..].to_owned(), Value::String(v));
                }
                "--set" => {
                    let (field, v) = value()?
                        .split_once('=')
                        .ok_or_else(|| "--set takes FIELD=VALUE".to_owned())?;
                    // JSON when it parses (numbers, booleans, lists), a plain string otherwise.
                    let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
                    fields.insert(field.to_owned(), v);
                }
                "--show-secret" | "--show-secrets" => flags.push(arg.as_str()),
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                word => words.push(word),
            }
        }
        let show = !flags.is_empty();
        let id = |id: &str| id.to_owned();
        let command = match (words.as_slice(), fields.is_empty()) {
            (["list"], true) => AppsCommand::List { show_secrets: show },
            (["show", i], true) => AppsCommand::Show {
                id: id(i),
                show_secret: show,
            },
            (["create", i], _) => AppsCommand::Create { id: id(i), fields },
            (["update", i], false) => AppsCommand::Update { id: id(i), fields },
            (["update", _], true) => return Err("update needs at least one --set".into()),
            ([verb @ ("enable" | "disable"), i], true) => AppsCommand::SetEnabled {
                id: id(i),
                enabled: *verb == "enable",
            },
            (["rotate-secret", i], true) => AppsCommand::RotateSecret { id: id(i) },
            _ => return Err(format!("unexpected arguments {words:?}")),
        };
        Ok((command, config))
    }

    /// Whether the command changes an app (and so should be announced).
    pub fn changes(&self) -> Option<&str> {
        match self {
            AppsCommand::List { .. } | AppsCommand::Show { .. } => None,
            AppsCommand::Create { id, .. }
            | AppsCommand::Update { id, .. }
            | AppsCommand::SetEnabled { id, .. }
            | AppsCommand::RotateSecret { id } => Some(id),
        }
    }

    /// Runs against `store`; returns the lines to print.
    pub async fn run(self, store: &dyn AppAdmin) -> Result<Vec<String>, AppStoreError> {
        let line = |app: &App, secret: bool| changes::view(app, secret).to_string();
        let missing = |id: &str| AppStoreError::Invalid(format!("no app with id {id:?}"));
        match self {
            AppsCommand::List { show_secrets } => Ok(store
                .list()
                .await?
                .iter()
                .map(|a| line(a, show_secrets))
                .collect()),
            AppsCommand::Show { id, show_secret } => {
                let app = store.by_id(&id).await?.ok_or_else(|| missing(&id))?;
                Ok(vec![line(&app, show_secret)])
            }
            AppsCommand::Create { id, mut fields } => {
                let key = take_text(&mut fields, "key").unwrap_or_else(changes::new_key);
                let secret = take_text(&mut fields, "secret")
                    .unwrap_or_else(|| changes::new_secret().expose().to_owned());
                let app =
                    changes::apply_patch(&App::new(&id, &key, &secret), &Value::Object(fields))?;
                changes::validate(&app)?;
                store.create(&app).await?;
                Ok(vec![line(&app, true)])
            }
            AppsCommand::Update { id, fields } => {
                let app = store.by_id(&id).await?.ok_or_else(|| missing(&id))?;
                let app = changes::apply_patch(&app, &Value::Object(fields))?;
                changes::validate(&app)?;
                if !store.update(&app).await? {
                    return Err(missing(&id));
                }
                Ok(vec![line(&app, false)])
            }
            AppsCommand::SetEnabled { id, enabled } => {
                let app = changes::set_enabled(store, &id, enabled)
                    .await?
                    .ok_or_else(|| missing(&id))?;
                Ok(vec![line(&app, false)])
            }
            AppsCommand::RotateSecret { id } => {
                let app = changes::rotate_secret(store, &id)
                    .await?
                    .ok_or_else(|| missing(&id))?;
                Ok(vec![line(&app, true)])
            }
        }
    }
}

fn take_text(fields: &mut Map<String, Value>, name: &str) -> Option<String> {
    match fields.remove(name) {
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(AppsCommand, Option<String>), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        AppsCommand::parse(&args)
    }

    #[test]
    fn parses_each_command() {
        let (cmd, config) = parse(&["--config", "c.toml", "list"]).expect("list");
        assert_eq!(
            cmd,
            AppsCommand::List {
                show_secrets: false
            }
        );
        assert_eq!(config.as_deref(), Some("c.toml"));
        let (cmd, _) =
            parse(&["update", "a", "--set", "max_connections=5", "--set", "x=hi"]).expect("update");
        let AppsCommand::Update { id, fields } = cmd else {
            panic!("not an update")
        };
        assert_eq!(id, "a");
        assert_eq!(fields["max_connections"], Value::from(5));
        assert_eq!(fields["x"], Value::from("hi"));
        let (cmd, _) = parse(&["disable", "a"]).expect("disable");
        assert_eq!(cmd.changes(), Some("a"));
        assert!(parse(&["update", "a"]).is_err());
        assert!(parse(&["list", "--bogus"]).is_err());
        assert!(parse(&["show"]).is_err());
        assert!(parse(&["--set", "nofield", "create", "a"]).is_err());
    }
}
