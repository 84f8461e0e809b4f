-- Billing (issue 5, owner: billing/postgres): tariff versions, billing
-- settings, demands and their append-only details (the ledger), collections
-- recorded against details, bills with gap-free numbers per tenant and
-- financial year, bill runs and their dead letters.
--
-- Conventions:
--   * Money is numeric, exact; amounts are what billing/ computed, never
--     recomputed in SQL.
--   * Dates (periods, issue and due dates) are civil dates in the tenant's
--     zone, which should be the rollup zone of meterd_storage (consumption
--     is read from day buckets of that zone).
--   * Immutable rows are refused changes by triggers raising SQLSTATE
--     'MD001' (billing/postgres maps it to billing.ErrImmutable).
--   * connection_id and user ids have no foreign keys: connections and users
--     are created by migrations 300+, which run after this one on a new
--     database. billing/postgres only writes ids it read from connections.
--   * The high-volume rows a bill run writes (demands, demand details,
--     bills) check their parents once per statement (billing_parents_*
--     triggers over the statement's new rows) instead of by foreign keys,
--     whose per-row checks doubled the cost of copying them in. Parents are
--     never deleted (demands refuse it; tenants are never removed), so
--     checking on insert keeps every reference valid.

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION billing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'MD001';
END $$;
-- +goose StatementEnd

-- Tariff versions: per tenant, service and plan, effective from a date in
-- the tenant's zone. document is the JSON exactly as published (a
-- billing/tariff document for electricity, municipal masters for water and
-- sewerage, named by format); billing/postgres validates it before insert.
-- A published version is never changed or deleted: a correction is a new
-- version.
CREATE TABLE tariff_versions (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint      NOT NULL REFERENCES tenants (id),
    service        text        NOT NULL CHECK (service IN ('electricity', 'water', 'sewerage')),
    -- the name connections.tariff_plan refers to
    plan           text        NOT NULL CHECK (plan ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    version        text        NOT NULL CHECK (version <> '' AND length(version) <= 200),
    effective_from date        NOT NULL,
    format         text        NOT NULL CHECK (format IN ('tariff', 'municipal')),
    document       text        NOT NULL,
    sha256         bytea       NOT NULL CHECK (length(sha256) = 32),
    published_at   timestamptz NOT NULL DEFAULT now(),
    published_by   bigint,     -- users.id of the official; NULL for seeds
    UNIQUE (tenant_id, service, plan, effective_from),
    CHECK ((service = 'electricity') = (format = 'tariff'))
);
CREATE TRIGGER tariff_versions_immutable BEFORE UPDATE OR DELETE ON tariff_versions
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change('a published tariff version is immutable; publish a new version');

-- A tenant's billing rules per service. Without a row the defaults apply
-- and no run is scheduled (officials may still start one).
CREATE TABLE billing_settings (
    tenant_id           bigint       NOT NULL REFERENCES tenants (id),
    service             text         NOT NULL CHECK (service IN ('electricity', 'water', 'sewerage')),
    cycle               text         NOT NULL DEFAULT 'monthly' CHECK (cycle IN ('monthly', 'quarterly')),
    -- day of the month the scheduled run bills the previous cycle
    generation_day      integer      NOT NULL DEFAULT 1 CHECK (generation_day BETWEEN 1 AND 28),
    scheduled           boolean      NOT NULL DEFAULT true,
    -- due date = issue date + due_after_days (tenant zone)
    due_after_days      integer      NOT NULL DEFAULT 15 CHECK (due_after_days BETWEEN 0 AND 120),
    -- the least part payment, as a percentage of the bill total (100: no part payment)
    minimum_payable_pct numeric(5,2) NOT NULL DEFAULT 100 CHECK (minimum_payable_pct > 0 AND minimum_payable_pct <= 100),
    updated_at          timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, service)
);

-- Bill runs: one per trigger. Counts are updated in each batch's
-- transaction, so they are exact at every commit; cursor is the last
-- connection id a committed batch covered, so a restarted job resumes.
CREATE TABLE bill_runs (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint      NOT NULL REFERENCES tenants (id),
    service      text        NOT NULL CHECK (service IN ('electricity', 'water', 'sewerage')),
    cycle        text        NOT NULL CHECK (cycle IN ('monthly', 'quarterly')),
    period_from  date        NOT NULL,
    period_to    date        NOT NULL,
    issue_date   date        NOT NULL,
    -- schedule: the periodic job; official: API; cli: meterd billrun; rerun: dead letters only
    trigger      text        NOT NULL CHECK (trigger IN ('schedule', 'official', 'cli', 'rerun')),
    requested_by bigint,     -- users.id; NULL for the scheduler and the CLI
    batch_size   integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 10000),
    status       text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    total        integer     NOT NULL DEFAULT 0, -- connections in scope
    processed    integer     NOT NULL DEFAULT 0, -- billed + unchanged + skipped + failed
    billed       integer     NOT NULL DEFAULT 0, -- bills issued by this run
    unchanged    integer     NOT NULL DEFAULT 0, -- already billed for the period: nothing new
    skipped      integer     NOT NULL DEFAULT 0, -- not billable (no tariff plan, …), see bill_run_skips
    failed       integer     NOT NULL DEFAULT 0, -- dead letters, see billing_dead_letters
    cursor       bigint      NOT NULL DEFAULT 0,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CHECK (period_to >= period_from)
);
-- At most one run of a tenant's service and period is queued or running.
CREATE UNIQUE INDEX bill_runs_active ON bill_runs (tenant_id, service, period_from)
    WHERE status IN ('queued', 'running');
CREATE INDEX bill_runs_tenant ON bill_runs (tenant_id, id DESC);

-- Connections a run did not bill, with the reason (no tariff plan …).
CREATE TABLE bill_run_skips (
    run_id        bigint NOT NULL REFERENCES bill_runs (id) ON DELETE CASCADE,
    connection_id bigint NOT NULL,
    consumer_code text   NOT NULL,
    reason        text   NOT NULL,
    PRIMARY KEY (run_id, connection_id)
);

-- Connections that failed to bill even on their own: the failure store of
-- bill runs. A row stays open (resolved_at NULL) until a later run bills
-- that connection and period, in the same transaction as the bill.
CREATE TABLE billing_dead_letters (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          bigint      NOT NULL REFERENCES tenants (id),
    service            text        NOT NULL,
    connection_id      bigint      NOT NULL,
    consumer_code      text        NOT NULL,
    period_from        date        NOT NULL,
    period_to          date        NOT NULL,
    reason             text        NOT NULL,
    attempts           integer     NOT NULL DEFAULT 1,
    first_run_id       bigint      NOT NULL REFERENCES bill_runs (id),
    last_run_id        bigint      NOT NULL REFERENCES bill_runs (id),
    first_failed_at    timestamptz NOT NULL DEFAULT now(),
    last_failed_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    resolved_by_run_id bigint      REFERENCES bill_runs (id)
);
CREATE UNIQUE INDEX billing_dead_letters_open ON billing_dead_letters (tenant_id, connection_id, period_from)
    WHERE resolved_at IS NULL;
CREATE INDEX billing_dead_letters_tenant ON billing_dead_letters (tenant_id, service, id) WHERE resolved_at IS NULL;

-- A demand: what a connection owes for one period. One per connection and
-- period. The consumption columns
-- say what the current details were rated on; a rebill after estimated
-- reads updates them and appends delta details.
CREATE TABLE demands (
    id              bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id       bigint      NOT NULL,
    connection_id   bigint      NOT NULL,
    service         text        NOT NULL CHECK (service IN ('electricity', 'water', 'sewerage')),
    consumer_code   text        NOT NULL,
    period_from     date        NOT NULL,
    period_to       date        NOT NULL,
    due_date        date        NOT NULL,
    tariff_plan     text        NOT NULL,
    import_wh       bigint      NOT NULL DEFAULT 0,
    export_wh       bigint      NOT NULL DEFAULT 0,
    estimated       boolean     NOT NULL DEFAULT false,
    measured_days   integer     NOT NULL DEFAULT 0,
    estimated_days  integer     NOT NULL DEFAULT 0,
    -- register readings printed on the bill (Wh, before the multiplier)
    previous_read_wh bigint,
    current_read_wh  bigint,
    meter_serial    text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (period_to >= period_from),
    -- Periods of a connection do not overlap either: billing/postgres
    -- creates a demand only after reading, under the connection's row lock,
    -- every demand overlapping the period (an exclusion constraint here
    -- cost a third of a bill run's write time).
    UNIQUE (connection_id, period_from)
);
CREATE INDEX demands_tenant_period ON demands (tenant_id, service, period_from);
CREATE TRIGGER demands_no_delete BEFORE DELETE ON demands
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change('demands are never deleted');

-- Demand details: append-only amounts per tax head. A recalculation
-- appends the difference; only collection_amount ever changes, and only
-- through collections (trigger below). A credit (advance) is negative and
-- is consumed whole.
CREATE TABLE demand_details (
    id                bigint         GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    demand_id         bigint         NOT NULL,
    tax_head          text           NOT NULL CHECK (tax_head <> ''),
    category          text           NOT NULL CHECK (category IN ('CHARGES', 'FEE', 'TAX', 'PENALTY', 'REBATE', 'EXEMPTION', 'ADVANCE_COLLECTION', 'FINES')),
    tax_amount        numeric(20,6)  NOT NULL,
    collection_amount numeric(20,6)  NOT NULL DEFAULT 0,
    -- why the row was appended
    source            text           NOT NULL CHECK (source IN ('calculation', 'recalculation', 'late_surcharge', 'advance', 'adjustment')),
    bill_run_id       bigint         REFERENCES bill_runs (id),
    created_at        timestamptz    NOT NULL DEFAULT now(),
    CHECK ((tax_amount >= 0 AND collection_amount BETWEEN 0 AND tax_amount)
        OR (tax_amount < 0 AND collection_amount IN (0, tax_amount)))
);
CREATE INDEX demand_details_demand ON demand_details (demand_id, id);
-- +goose StatementBegin
CREATE FUNCTION demand_details_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'demand details are append-only' USING ERRCODE = 'MD001';
    END IF;
    IF (NEW.id, NEW.demand_id, NEW.tax_head, NEW.category, NEW.tax_amount, NEW.source, NEW.bill_run_id, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.demand_id, OLD.tax_head, OLD.category, OLD.tax_amount, OLD.source, OLD.bill_run_id, OLD.created_at) THEN
        RAISE EXCEPTION 'demand details are append-only: append a delta instead' USING ERRCODE = 'MD001';
    END IF;
    IF current_setting('meterd.collecting', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'collection_amount changes only through collections' USING ERRCODE = 'MD001';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER demand_details_guard BEFORE UPDATE OR DELETE ON demand_details
    FOR EACH ROW EXECUTE FUNCTION demand_details_guard();

-- Parent checks per statement (see the conventions above).
-- +goose StatementBegin
CREATE FUNCTION billing_parents_demands() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = n.tenant_id)) THEN
        RAISE EXCEPTION 'demand of an unknown tenant' USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION billing_parents_demand_details() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM demands d WHERE d.id = n.demand_id)) THEN
        RAISE EXCEPTION 'demand detail of an unknown demand' USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER billing_parents_demands AFTER INSERT ON demands
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_parents_demands();
CREATE TRIGGER billing_parents_demand_details AFTER INSERT ON demand_details
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_parents_demand_details();

-- Collection postings: one per payment (or reversal, or advance consumed by
-- a new demand), idempotent on (tenant, reference). advance is the part of
-- a payment carried forward as a negative advance detail.
CREATE TABLE collection_postings (
    id                  bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint        NOT NULL REFERENCES tenants (id),
    connection_id       bigint        NOT NULL,
    reference           text          NOT NULL CHECK (reference <> '' AND length(reference) <= 200),
    kind                text          NOT NULL CHECK (kind IN ('payment', 'reversal', 'advance_adjustment')),
    amount              numeric(20,6) NOT NULL,
    advance             numeric(20,6) NOT NULL DEFAULT 0 CHECK (advance >= 0),
    bill_id             bigint,
    reverses_posting_id bigint        REFERENCES collection_postings (id),
    received_at         timestamptz   NOT NULL,
    posted_at           timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, reference)
);
CREATE INDEX collection_postings_connection ON collection_postings (connection_id, id);
CREATE UNIQUE INDEX collection_postings_reversed ON collection_postings (reverses_posting_id) WHERE reverses_posting_id IS NOT NULL;

-- Collections: amounts of a posting recorded against demand details. Each
-- insert adds to the detail's collection_amount in the same statement.
CREATE TABLE collections (
    id               bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id       bigint        NOT NULL REFERENCES collection_postings (id),
    demand_detail_id bigint        NOT NULL REFERENCES demand_details (id),
    amount           numeric(20,6) NOT NULL CHECK (amount <> 0),
    created_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX collections_posting ON collections (posting_id);
CREATE INDEX collections_detail ON collections (demand_detail_id);
-- +goose StatementBegin
CREATE FUNCTION collections_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('meterd.collecting', 'on', true);
    UPDATE demand_details SET collection_amount = collection_amount + NEW.amount WHERE id = NEW.demand_detail_id;
    PERFORM set_config('meterd.collecting', 'off', true);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER collections_apply AFTER INSERT ON collections
    FOR EACH ROW EXECUTE FUNCTION collections_apply();
CREATE TRIGGER collections_immutable BEFORE UPDATE OR DELETE ON collections
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change('collections are a journal; post a reversal');
CREATE TRIGGER collection_postings_immutable BEFORE UPDATE OR DELETE ON collection_postings
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change('postings are a journal; post a reversal');

-- Gap-free bill numbers: the counter row is advanced in the transaction
-- that issues the bills, so an aborted transaction leaves no gap.
CREATE TABLE bill_number_counters (
    tenant_id      bigint  NOT NULL REFERENCES tenants (id),
    financial_year integer NOT NULL, -- the year it starts: 2024 is 2024-25
    last_seq       integer NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    PRIMARY KEY (tenant_id, financial_year)
);

-- Bills: immutable documents presenting a connection's open demands, lines
-- included. Once issued only the payment state (status, paid_amount,
-- status_changed_at) and cancellation columns change; a correction cancels the bill and
-- issues a new one (replaces_bill_id) for the same demand.
--   current_charges  the bill's own demand (period_from..period_to)
--   arrears          outstanding of earlier demands when it was issued
--   advance          unconsumed advance (≤ 0) when it was issued
--   total            current_charges + arrears + advance: payable
--   round_off        the round-off included in current_charges
--   lines            [{"section": "current"|"arrears"|"advance", "code",
--                    "description", "quantity", "unit", "rate", "amount"}]:
--                    quantity, unit and rate only where the line has them;
--                    numbers as decimal strings (json, not jsonb: written
--                    once, read whole, never queried inside)
-- bill_run_id has no foreign key so that issuing a bill does not check
-- (and share-lock) the run row per bill.
CREATE TABLE bills (
    id               bigint        GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tenant_id        bigint        NOT NULL,
    connection_id    bigint        NOT NULL,
    demand_id        bigint        NOT NULL,
    bill_run_id      bigint,
    number           text          NOT NULL,
    financial_year   integer       NOT NULL,
    seq              integer       NOT NULL CHECK (seq > 0),
    service          text          NOT NULL,
    consumer_code    text          NOT NULL,
    consumer_user_id bigint,
    consumer_name    text          NOT NULL DEFAULT '',
    property_id      bigint,
    property_label   text          NOT NULL DEFAULT '',
    meter_serial     text          NOT NULL DEFAULT '',
    tariff_plan      text          NOT NULL,
    tariff_version   text          NOT NULL DEFAULT '',
    currency         text          NOT NULL,
    period_from      date          NOT NULL,
    period_to        date          NOT NULL,
    issue_date       date          NOT NULL,
    due_date         date          NOT NULL,
    issued_at        timestamptz   NOT NULL DEFAULT now(),
    previous_read_wh bigint,
    current_read_wh  bigint,
    consumption_wh   bigint        NOT NULL DEFAULT 0,
    estimated        boolean       NOT NULL DEFAULT false,
    current_charges  numeric(20,6) NOT NULL,
    arrears          numeric(20,6) NOT NULL DEFAULT 0,
    advance          numeric(20,6) NOT NULL DEFAULT 0 CHECK (advance <= 0),
    round_off        numeric(20,6) NOT NULL DEFAULT 0,
    total            numeric(20,6) NOT NULL,
    minimum_payable  numeric(20,6) NOT NULL,
    lines            json          NOT NULL CHECK (json_typeof(lines) = 'array'),
    -- up to 12 periods ending with this one: [{"from","to","kwh","estimated"}]
    usage_history    json          NOT NULL DEFAULT '[]',
    status           text          NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'partially_paid', 'paid', 'overdue', 'cancelled')),
    paid_amount      numeric(20,6) NOT NULL DEFAULT 0,
    status_changed_at timestamptz,
    cancelled_at     timestamptz,
    cancel_reason    text,
    replaces_bill_id bigint        REFERENCES bills (id),
    -- number is "<TENANT CODE>/<FY>/<seq, 6 digits>": unique with the seq.
    UNIQUE (tenant_id, financial_year, seq),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
-- One live bill per demand: re-running a bill run cannot issue a second.
CREATE UNIQUE INDEX bills_live_demand ON bills (demand_id) WHERE status <> 'cancelled';
CREATE INDEX bills_connection ON bills (connection_id, period_from DESC);
CREATE INDEX bills_consumer ON bills (consumer_user_id, id DESC);
CREATE INDEX bills_open_due ON bills (due_date) WHERE status IN ('issued', 'partially_paid');
-- +goose StatementBegin
CREATE FUNCTION bills_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'bills are never deleted; cancel instead' USING ERRCODE = 'MD001';
    END IF;
    IF (to_jsonb(NEW) - ARRAY['status', 'paid_amount', 'status_changed_at', 'cancelled_at', 'cancel_reason'])
       IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['status', 'paid_amount', 'status_changed_at', 'cancelled_at', 'cancel_reason']) THEN
        RAISE EXCEPTION 'bill % is issued and immutable: cancel and rebill', OLD.number USING ERRCODE = 'MD001';
    END IF;
    IF OLD.status = 'cancelled' AND (NEW.status, NEW.paid_amount, NEW.cancelled_at, NEW.cancel_reason)
       IS DISTINCT FROM (OLD.status, OLD.paid_amount, OLD.cancelled_at, OLD.cancel_reason) THEN
        RAISE EXCEPTION 'bill % is cancelled', OLD.number USING ERRCODE = 'MD001';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER bills_guard BEFORE UPDATE OR DELETE ON bills
    FOR EACH ROW EXECUTE FUNCTION bills_guard();
-- A bill presents a demand of its own tenant and connection.
-- +goose StatementBegin
CREATE FUNCTION billing_parents_bills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM demands d
               WHERE d.id = n.demand_id AND d.tenant_id = n.tenant_id AND d.connection_id = n.connection_id)) THEN
        RAISE EXCEPTION 'bill of an unknown demand, or of another tenant''s or connection''s demand' USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER billing_parents_bills AFTER INSERT ON bills
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing_parents_bills();

-- +goose Down
DROP TABLE bills;
DROP FUNCTION billing_parents_bills();
DROP FUNCTION bills_guard();
DROP TABLE bill_number_counters;
DROP TABLE collections;
DROP FUNCTION collections_apply();
DROP TABLE collection_postings;
DROP TABLE demand_details;
DROP FUNCTION billing_parents_demand_details();
DROP FUNCTION demand_details_guard();
DROP TABLE demands;
DROP FUNCTION billing_parents_demands();
DROP TABLE billing_dead_letters;
DROP TABLE bill_run_skips;
DROP TABLE bill_runs;
DROP TABLE billing_settings;
DROP TABLE tariff_versions;
DROP FUNCTION billing_refuse_change();
