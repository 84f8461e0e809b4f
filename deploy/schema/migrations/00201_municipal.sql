-- Municipal services (issue 5, owner: billing/postgres): what bill runs of
-- sewerage and water connections and the municipal calculators' API need
-- beyond 00200.
--
--   * demands.kind: 'periodic' is a connection's charge for one billing
--     period (consumer code = the connection's); 'fee' is the one-time fee
--     demand of a connection's application (consumer code = the application
--     number), created when an official approves it, at most one per
--     connection. A fee demand's period (approval day onwards, the policy's
--     length) overlaps periodic ones, so a period start is unique per
--     connection and kind.
--   * municipal_attributes: what water slabs count that connections do not
--     carry (number of taps, pipe size), set by officials per connection.
--     No foreign key to connections: they are created by migration 00301,
--     which runs after this one on a new database (see 00200).
--   * Metered water volume: a water meter (meters.model starting with
--     "water", e.g. "water-litre") counts litres in its import register, so
--     readings.import_wh and the rollups' import columns hold litres for it
--     (1 unit = 1 litre, the same integer arithmetic as Wh). Demands and
--     bills of water connections keep litres in import_wh / consumption_wh
--     and previous_read_wh / current_read_wh; the calculators bill
--     kilolitres (m³), the unit of WCBillingSlab bands. A metered water
--     connection whose meter is not a water meter is not billed (dead
--     letter with the reason).

-- +goose Up
ALTER TABLE demands ADD COLUMN kind text NOT NULL DEFAULT 'periodic' CHECK (kind IN ('periodic', 'fee'));
ALTER TABLE demands DROP CONSTRAINT demands_connection_id_period_from_key;
ALTER TABLE demands ADD CONSTRAINT demands_connection_kind_period UNIQUE (connection_id, kind, period_from);
CREATE UNIQUE INDEX demands_one_fee ON demands (connection_id) WHERE kind = 'fee';

CREATE TABLE municipal_attributes (
    connection_id bigint      PRIMARY KEY,
    tenant_id     bigint      NOT NULL REFERENCES tenants (id),
    -- "No. of taps" of water slabs
    taps          integer     CHECK (taps BETWEEN 0 AND 10000),
    -- "Pipe Size" of water slabs, in the unit the tenant's slabs use (mm)
    pipe_size     integer     CHECK (pipe_size BETWEEN 0 AND 10000),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint      -- users.id of the official
);

-- +goose Down
DROP TABLE municipal_attributes;
DROP INDEX demands_one_fee;
ALTER TABLE demands DROP CONSTRAINT demands_connection_kind_period;
ALTER TABLE demands ADD CONSTRAINT demands_connection_id_period_from_key UNIQUE (connection_id, period_from);
ALTER TABLE demands DROP COLUMN kind;
