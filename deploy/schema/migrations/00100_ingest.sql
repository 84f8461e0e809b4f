-- Ingest (issue 4): counter events and per-meter latest state / liveness.

-- +goose Up

-- Register resets, rollovers, replacements and impossible jumps the gateway
-- detected between two consecutive readings of a meter's energy register
-- (meter.StepCounter). The raw values stay in readings; this table says how
-- to read the step between them, so consumption downstream is never negative
-- or absurd. Written idempotently: a replayed reading cannot record an event
-- twice.
CREATE TABLE counter_events (
    meter_id       bigint      NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
    register       text        NOT NULL CHECK (register IN ('import_wh', 'export_wh')),
    ts             timestamptz NOT NULL, -- source time of the reading after the step
    kind           smallint    NOT NULL CHECK (kind BETWEEN 1 AND 4), -- meter.CounterEventKind: 1 rollover, 2 reset, 3 replacement, 4 jump
    prev_ts        timestamptz NOT NULL, -- source time of the reading before the step
    prev_wh        bigint      NOT NULL, -- register before the step, raw Wh
    value_wh       bigint      NOT NULL, -- register after the step, raw Wh
    delta_wh       bigint      NOT NULL, -- value_wh - prev_wh as read (negative for resets and rollovers)
    consumption_wh bigint      NOT NULL CHECK (consumption_wh >= 0), -- energy to attribute to the step
    detected_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, register, ts)
);
CREATE INDEX counter_events_ts ON counter_events (ts);

-- The newest reading of each meter and when the gateway last heard from it.
-- The API's "real-time usage" reads it; the gateway upserts it in batches a
-- few seconds after readings commit, so it may lag readings by that much.
--   ts, received_at        source and arrival time of the newest reading
--                          (by source time; late readings never move it back)
--   last_seen              newest arrival of any reading, late ones included:
--                          liveness (offline = last_seen older than
--                          k × meters.expected_interval)
--   import_wh, export_wh   newest register values and the source times they
--   import_ts, export_ts   were read at (a reading may lack a register)
--   power_w … power_factor instantaneous values of the newest reading, NULL
--                          when it did not carry them
--   source                 meter.Source of the newest reading
CREATE TABLE meter_latest (
    meter_id     bigint      PRIMARY KEY REFERENCES meters (id) ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    import_wh    bigint,
    import_ts    timestamptz,
    export_wh    bigint,
    export_ts    timestamptz,
    power_w      real,
    voltage_v    real,
    current_a    real,
    frequency_hz real,
    power_factor real,
    source       smallint    NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meter_latest_last_seen ON meter_latest (last_seen);

-- +goose Down
DROP TABLE meter_latest;
DROP TABLE counter_events;
