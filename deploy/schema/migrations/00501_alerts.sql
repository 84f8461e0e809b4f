-- Abnormal-usage alerts (issue 8, owner: alerts/postgres): the detector's
-- thresholds, its alerts with their lifecycle, and its scan watermarks.

-- +goose Up

-- Consumption thresholds per tenant, service and tariff plan (the
-- requirement's "threshold of their tariff plan"); tariff_plan '*' is the
-- tenant's default for the service. A meter is checked against the plan of
-- the connection it is installed on. Wh of import per tenant-zone day and
-- per calendar month; NULL: no threshold of that span.
CREATE TABLE alert_thresholds (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id),
    service     text        NOT NULL CHECK (service IN ('electricity', 'water', 'sewerage')),
    tariff_plan text        NOT NULL CHECK (tariff_plan = '*' OR tariff_plan ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    daily_wh    bigint      CHECK (daily_wh > 0),
    monthly_wh  bigint      CHECK (monthly_wh > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  bigint,
    PRIMARY KEY (tenant_id, service, tariff_plan),
    CHECK (daily_wh IS NOT NULL OR monthly_wh IS NOT NULL)
);

-- An anomaly on a meter. Lifecycle: open → acknowledged → resolved (or
-- open → resolved); resolved is final, and a later detection opens a new
-- alert. At most one alert per meter and kind is not resolved (index
-- below): while one is, detections update it (last_detected_at,
-- occurrences, observed) instead of opening another.
--   kind  consumption_threshold  import above the plan's daily/monthly threshold (AbnormalUsage)
--         usage_deviation        an hour far from the meter's own baseline (same weekday and hour, median and MAD)
--         stuck                  registers frozen while the meter reports, for N days
--         tamper                 a register went backwards without a recorded reset, rollover or replacement
--         silent                 no reading for longer than k × the meter's expected interval
--         load_above_sanctioned  power above the connection's sanctioned load
--   connection_id, user_id  where the meter was installed when the alert
--         opened, and the consumer owning it (who may see it); NULL for a
--         meter not installed on a connection (staff only)
--   observed, expected, unit  the evidence in numbers (e.g. 41.2 kWh vs 12 kWh)
--   evidence  the rule's details (times, registers, baseline)
CREATE TABLE alerts (
    id               bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint           NOT NULL,
    meter_id         bigint           NOT NULL,
    connection_id    bigint,
    user_id          bigint,
    kind             text             NOT NULL CHECK (kind IN ('consumption_threshold', 'usage_deviation', 'stuck', 'tamper', 'silent', 'load_above_sanctioned')),
    severity         text             NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text             NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    summary          text             NOT NULL CHECK (summary <> '' AND length(summary) <= 500),
    observed         double precision,
    expected         double precision,
    unit             text             NOT NULL DEFAULT '',
    evidence         jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(evidence) = 'object'),
    -- the data time of the first and latest detection (bucket or reading time)
    first_seen_at    timestamptz      NOT NULL,
    last_seen_at     timestamptz      NOT NULL,
    occurrences      integer          NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    opened_at        timestamptz      NOT NULL,
    updated_at       timestamptz      NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  bigint,
    resolved_at      timestamptz,
    resolved_by      bigint,
    resolution       text             CHECK (resolution IN ('auto', 'manual')),
    note             text             NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    FOREIGN KEY (tenant_id, meter_id) REFERENCES meters (tenant_id, id) ON DELETE CASCADE,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL AND resolution IS NOT NULL)),
    CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL)
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (meter_id, kind) WHERE status <> 'resolved';
CREATE INDEX alerts_tenant ON alerts (tenant_id, id DESC);
CREATE INDEX alerts_tenant_unresolved ON alerts (tenant_id, kind, meter_id) WHERE status <> 'resolved';
CREATE INDEX alerts_user ON alerts (user_id, id DESC) WHERE user_id IS NOT NULL;

-- Where each scan of a tenant got to: the hourly scan's watermark is the
-- end of the last hour it evaluated; the daily scan's the end of the last
-- day.
CREATE TABLE alert_scan_state (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id),
    scan        text        NOT NULL CHECK (scan IN ('hourly', 'daily', 'liveness')),
    watermark   timestamptz NOT NULL,
    last_run_at timestamptz NOT NULL,
    meters      integer     NOT NULL DEFAULT 0,
    findings    integer     NOT NULL DEFAULT 0,
    took_ms     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, scan)
);

-- +goose Down
DROP TABLE alert_scan_state;
DROP TABLE alerts;
DROP TABLE alert_thresholds;
