//! Changes to apps as the CLI and the admin HTTP API make them, independent of the store.

use rand::Rng;
use serde_json::Value;

use crate::{App, AppAdmin, AppStoreError, Secret};

const MAX_ID_LEN: usize = 64;
const MAX_KEY_LEN: usize = 128;

/// A new random secret: 256 bits as 64 hex characters, the size of an HMAC-SHA256 key.
pub fn new_secret() -> Secret {
    Secret::new(random_hex::<32>())
}

/// A new random app key: 128 bits as 32 hex characters, safe in URLs as it is.
pub fn new_key() -> String {
    random_hex::<16>()
}

fn random_hex<const N: usize>() -> String {
    // `rng()` is the thread-local CSPRNG, seeded from the OS.
    let bytes: [u8; N] = rand::rng().random();
    hex::encode(bytes)
}

/// Checks an app before a store saves it: non-empty id, key and secret; id and key made of
/// `[A-Za-z0-9_.-]` (they appear in URLs and channel subjects unescaped), at most 64 and 128
/// characters (the SQL columns' sizes).
pub fn validate(app: &App) -> Result<(), AppStoreError> {
    check_name("id", &app.id, MAX_ID_LEN)?;
    check_name("key", &app.key, MAX_KEY_LEN)?;
    if app.secret.expose().is_empty() {
        return Err(AppStoreError::Invalid("the secret is empty".into()));
    }
    Ok(())
}

fn check_name(what: &str, value: &str, max_len: usize) -> Result<(), AppStoreError> {
    if value.is_empty() {
        return Err(AppStoreError::Invalid(format!("the {what} is empty")));
    }
    if value.len() > max_len {
        return Err(AppStoreError::Invalid(format!(
            "the {what} is {} characters long; at most {max_len} are allowed",
            value.len()
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(AppStoreError::Invalid(format!(
            "the {what} {value:?} contains {bad:?}; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"
        )));
    }
    Ok(())
}

/// The app with `patch` (a JSON object) merged over its JSON form, top-level fields only: a
/// field in the patch replaces the app's, and `null` puts a setting back to its default
/// (as in a JSON merge patch). The secret cannot be set this way (use [`rotate_secret`]),
/// nor the id changed; unknown fields and wrong types are `Invalid` with serde's message.
pub fn apply_patch(app: &App, patch: &Value) -> Result<App, AppStoreError> {
    let Value::Object(patch) = patch else {
        return Err(AppStoreError::Invalid(
            "a change to an app is a JSON object of the settings to change".into(),
        ));
    };
    if patch.contains_key("secret") {
        return Err(AppStoreError::Invalid(
            "the secret cannot be set; rotate it instead".into(),
        ));
    }
    // An unchanged id is accepted so that a client may send back what `view` gave it.
    if patch
        .get("id")
        .is_some_and(|id| id.as_str() != Some(&app.id))
    {
        return Err(AppStoreError::Invalid(
            "an app's id cannot be changed".into(),
        ));
    }

    let Value::Object(mut fields) = to_json(app)? else {
        return Err(AppStoreError::Invalid("an app is not a JSON object".into()));
    };
    for (name, value) in patch {
        if value.is_null() {
            fields.remove(name);
        } else {
            fields.insert(name.clone(), value.clone());
        }
    }
    let patched: App = serde_json::from_value(Value::Object(fields))
        .map_err(|e| AppStoreError::Invalid(e.to_string()))?;
    validate(&patched)?;
    Ok(patched)
}

/// The app as JSON, every setting included; the secret only when `show_secret`.
pub fn view(app: &App, show_secret: bool) -> Value {
    let mut json = to_json(app).unwrap_or(Value::Null);
    if !show_secret {
        if let Value::Object(fields) = &mut json {
            fields.remove("secret");
        }
    }
    json
}

fn to_json(app: &App) -> Result<Value, AppStoreError> {
    // Cannot fail: every field is a string, number, bool, list or string map.
    serde_json::to_value(app).map_err(|e| AppStoreError::Invalid(e.to_string()))
}

/// Enables or disables the app; the app as saved, or `None` when there is no such app.
///
/// This reads and then replaces the whole app, so a change made by someone else in between
/// is lost; admin changes are rare and made by people, which makes that acceptable.
pub async fn set_enabled(
    store: &dyn AppAdmin,
    id: &str,
    enabled: bool,
) -> Result<Option<App>, AppStoreError> {
    modify(store, id, |app| app.enabled = enabled).await
}

/// Gives the app a new random secret; the app as saved (with the new secret), or `None` when
/// there is no such app. Same read-then-replace caveat as [`set_enabled`].
pub async fn rotate_secret(store: &dyn AppAdmin, id: &str) -> Result<Option<App>, AppStoreError> {
    modify(store, id, |app| app.secret = new_secret()).await
}

async fn modify(
    store: &dyn AppAdmin,
    id: &str,
    change: impl FnOnce(&mut App),
) -> Result<Option<App>, AppStoreError> {
    let Some(current) = store.by_id(id).await? else {
        return Ok(None);
    };
    let mut app = (*current).clone();
    change(&mut app);
    // False only when the app was removed since we read it.
    Ok(store.update(&app).await?.then_some(app))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_and_secrets_are_random_and_url_safe() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        let secret = new_secret();
        assert_eq!(secret.expose().len(), 64);
        assert_ne!(secret, new_secret());
        assert!(validate(&App::new("1", &a, secret.expose())).is_ok());
    }

    #[test]
    fn validate_rejects_bad_names() {
        let ok = App::new("app-1.x_y", "Key-1", "s");
        assert!(validate(&ok).is_ok());
        for (id, key, secret) in [
            ("", "k", "s"),
            ("1", "", "s"),
            ("1", "k", ""),
            ("a/b", "k", "s"),
            ("1", "k y", "s"),
            ("1", "ké", "s"),
        ] {
            let err = validate(&App::new(id, key, secret)).expect_err("validate");
            assert!(matches!(err, AppStoreError::Invalid(_)), "{id:?} {key:?}");
        }
        assert!(validate(&App::new(&"i".repeat(64), &"k".repeat(128), "s")).is_ok());
        assert!(validate(&App::new(&"i".repeat(65), "k", "s")).is_err());
        assert!(validate(&App::new("1", &"k".repeat(129), "s")).is_err());
    }

    #[test]
    fn patch_changes_top_level_settings() {
        let mut app = App::new("1", "k", "s");
        app.max_connections = 5;
        let patched = apply_patch(
            &app,
            &json!({"key": "k2", "enable_client_messages": true, "max_connections": null,
                    "allowed_origins": ["https://a.example"], "id": "1"}),
        )
        .expect("apply patch");
        assert_eq!(patched.key, "k2");
        assert!(patched.enable_client_messages);
        assert_eq!(patched.max_connections, 0, "null restores the default");
        assert_eq!(patched.allowed_origins, ["https://a.example"]);
        assert_eq!(patched.secret.expose(), "s");
    }

    #[test]
    fn patch_refuses_id_secret_unknown_fields_and_wrong_types() {
        let app = App::new("1", "k", "s");
        for patch in [
            json!({"id": "2"}),
            json!({"secret": "new"}),
            json!({"colour": "blue"}),
            json!({"max_connections": "many"}),
            json!({"key": "has space"}),
            json!(["not", "an", "object"]),
        ] {
            let err = apply_patch(&app, &patch).expect_err("apply patch");
            assert!(matches!(err, AppStoreError::Invalid(_)), "{patch}: {err}");
        }
        let err = apply_patch(&app, &json!({"colour": "blue"})).expect_err("apply patch");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn view_hides_the_secret_unless_asked() {
        let app = App::new("1", "k", "very-secret");
        let hidden = view(&app, false);
        assert_eq!(hidden["key"], "k");
        assert!(hidden.get("secret").is_none());
        assert!(!hidden.to_string().contains("very-secret"));
        assert_eq!(view(&app, true)["secret"], "very-secret");
    }
}
