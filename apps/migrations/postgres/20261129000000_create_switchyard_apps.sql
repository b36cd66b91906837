-- One row per app. The columns are what lookups and uniqueness need; every other setting is
-- the JSON text in `settings`, so a new setting needs no migration.
-- COLLATE "C": ids and keys sort byte for byte, as the other stores list them.
CREATE TABLE IF NOT EXISTS switchyard_apps (
    id VARCHAR(64) COLLATE "C" NOT NULL,
    app_key VARCHAR(128) COLLATE "C" NOT NULL,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    settings TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT switchyard_apps_pkey PRIMARY KEY (id),
    CONSTRAINT switchyard_apps_app_key UNIQUE (app_key)
);
