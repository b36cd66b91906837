-- One row per app. The columns are what lookups and uniqueness need; every other setting is
-- the JSON text in `settings`, so a new setting needs no migration.
-- utf8mb4_bin on the id and key: they compare and sort byte for byte (case-sensitive), as in
-- the config file. Only there, because sqlx reads binary-collated columns as bytes.
CREATE TABLE IF NOT EXISTS switchyard_apps (
    id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    app_key VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    settings TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY switchyard_apps_app_key (app_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
