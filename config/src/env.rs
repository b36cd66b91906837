//! `SWITCHYARD_*` environment overrides, as soketi and Sockudo users set them in containers.

use std::collections::HashMap;

use switchyard_apps::{App, Webhook};

use crate::ServerConfig;

/// `SWITCHYARD_<KEY>` for each `[server]` key replaces the file's value.
pub(crate) fn apply_server_overrides(table: &mut toml::Table, env: &HashMap<String, String>) {
    for key in ServerConfig::KEYS {
        let var = format!("SWITCHYARD_{}", key.to_ascii_uppercase());
        if let Some(raw) = env.get(&var) {
            table.insert(key.to_owned(), typed(raw));
        }
    }
}

/// `SWITCHYARD_<SECTION>_<KEY>` sets `key` in `[section]`; unknown keys then fail validation
/// like unknown keys in the file.
pub(crate) fn apply_section_overrides(
    table: &mut toml::Table,
    section: &str,
    env: &HashMap<String, String>,
) {
    let prefix = format!("SWITCHYARD_{}_", section.to_ascii_uppercase());
    for (var, raw) in env {
        if let Some(key) = var.strip_prefix(&prefix) {
            table.insert(key.to_ascii_lowercase(), typed(raw));
        }
    }
}

/// Numbers and booleans as such, anything else as a string; the schema then checks the type.
fn typed(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

const PREFIX: &str = "SWITCHYARD_DEFAULT_APP_";

/// The default app: `app-id` / `app-key` / `app-secret` when the file lists no apps, shaped by
/// `SWITCHYARD_DEFAULT_APP_*`; when the file has apps, it is added only if one of those
/// variables is set.
pub(crate) fn default_app(
    env: &HashMap<String, String>,
    no_apps: bool,
) -> Result<Option<App>, Vec<String>> {
    let get = |name: &str| env.get(&format!("{PREFIX}{name}")).map(String::as_str);
    let any_set = env.keys().any(|k| k.starts_with(PREFIX));
    if !no_apps && !any_set {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let mut app = App::new(
        get("ID").unwrap_or("app-id"),
        get("KEY").unwrap_or("app-key"),
        get("SECRET").unwrap_or("app-secret"),
    );
    let mut flag = |name: &str, target: &mut bool| match get(name).map(str::parse::<bool>) {
        None => {}
        Some(Ok(v)) => *target = v,
        Some(Err(_)) => errors.push(format!("{PREFIX}{name} must be true or false")),
    };
    flag("ENABLE_CLIENT_MESSAGES", &mut app.enable_client_messages);
    flag(
        "REQUIRE_AUTHORIZED_CONNECTIONS",
        &mut app.require_authorized_connections,
    );
    flag(
        "ENABLE_SUBSCRIPTION_COUNT",
        &mut app.enable_subscription_count,
    );
    match get("MAX_CONNECTIONS").map(str::parse::<u64>) {
        None => {}
        Some(Ok(n)) => app.max_connections = n,
        Some(Err(_)) => errors.push(format!(
            "{PREFIX}MAX_CONNECTIONS must be a whole number (0 = unlimited)"
        )),
    }
    if let Some(url) = get("WEBHOOK_URL") {
        app.webhooks.push(Webhook {
            url: url.to_owned(),
            event_types: Vec::new(),
            filter: Default::default(),
            headers: Default::default(),
        });
    }
    let known = [
        "ID",
        "KEY",
        "SECRET",
        "ENABLE_CLIENT_MESSAGES",
        "REQUIRE_AUTHORIZED_CONNECTIONS",
        "ENABLE_SUBSCRIPTION_COUNT",
        "MAX_CONNECTIONS",
        "WEBHOOK_URL",
    ];
    for k in env.keys().filter_map(|k| k.strip_prefix(PREFIX)) {
        if !known.contains(&k) {
            errors.push(format!("unknown variable {PREFIX}{k}"));
        }
    }
    if errors.is_empty() {
        Ok(Some(app))
    } else {
        Err(errors)
    }
}
