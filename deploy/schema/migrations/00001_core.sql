-- Core tables every profile shares. Later issues add their own migrations.

-- +goose Up
-- The storage profile chosen at first migrate; one row.
CREATE TABLE meterd_storage (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    profile            text        NOT NULL CHECK (profile IN ('timescale', 'postgres')),
    rollup_time_zone   text        NOT NULL,
    partition_interval interval    NOT NULL,
    chosen_at          timestamptz NOT NULL DEFAULT now()
);

-- A utility or municipal body: owns tariffs, staff, numbering, time zone and currency.
CREATE TABLE tenants (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       text        NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text        NOT NULL CHECK (name <> ''),
    time_zone  text        NOT NULL DEFAULT 'UTC',
    currency   text        NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A metering device for the span it is installed. Replacing a meter ends one
-- row's span (removed_at) and starts another's.
CREATE TABLE meters (
    id                bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint        NOT NULL REFERENCES tenants (id),
    external_id       text          NOT NULL CHECK (external_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    serial            text          NOT NULL CHECK (serial <> ''),
    model             text          NOT NULL CHECK (model <> ''),
    protocol          text          NOT NULL CHECK (protocol IN ('mqtt', 'modbus', 'manual')),
    -- protocol and connection settings: MQTT payload format; Modbus bus address, unit id, map.
    settings          jsonb         NOT NULL DEFAULT '{}',
    -- Hash of the meter's MQTT password, "sha256:<hex>". Meter secrets are
    -- random (≥ 128 bits), so a fast hash is as safe as a slow one and lets
    -- the broker authenticate 100,000 reconnecting meters; people's
    -- passwords use argon2id. NULL when the meter has no MQTT login.
    mqtt_secret_hash  text CHECK (mqtt_secret_hash IS NULL OR mqtt_secret_hash ~ '^sha256:[0-9a-f]{64}$'),
    -- current-transformer (CT/PT) multiplier applied to register deltas.
    multiplier        numeric(12,4) NOT NULL DEFAULT 1 CHECK (multiplier > 0),
    expected_interval interval      NOT NULL DEFAULT '15 minutes' CHECK (expected_interval > '0'),
    installed_at      timestamptz   NOT NULL DEFAULT now(),
    removed_at        timestamptz   CHECK (removed_at IS NULL OR removed_at >= installed_at),
    created_at        timestamptz   NOT NULL DEFAULT now(),
    updated_at        timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id),
    UNIQUE (tenant_id, serial)
);

-- Input the gateway could not accept, kept whole with the reason.
CREATE TABLE readings_rejected (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      smallint    NOT NULL,         -- meter.Source
    topic       text        NOT NULL DEFAULT '', -- MQTT topic or Modbus device address
    meter_ref   text        NOT NULL DEFAULT '', -- the meter the input claimed to be from
    reason      text        NOT NULL,         -- stable reason code, e.g. bad_json
    detail      text        NOT NULL DEFAULT '',
    payload     bytea       NOT NULL
);
CREATE INDEX readings_rejected_received_at ON readings_rejected (received_at);
CREATE INDEX readings_rejected_reason ON readings_rejected (reason, received_at);

-- +goose Down
DROP TABLE readings_rejected;
DROP TABLE meters;
DROP TABLE tenants;
DROP TABLE meterd_storage;
