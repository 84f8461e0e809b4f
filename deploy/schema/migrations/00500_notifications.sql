-- Notifications (issue 8, owner: alerts/postgres): deliveries of the
-- notification_outbox (00300) per recipient and channel, preferences,
-- templates, tenant branding, reminder policy and push devices.
--
-- How a message travels:
--   1. A producer writes a notification_outbox row in the transaction of the
--      change that causes it (account, support, billing, payments, alerts).
--   2. The notify pump (a River periodic job) claims pending outbox rows
--      FOR UPDATE SKIP LOCKED, resolves recipients, preferences and
--      addresses, writes one notification_deliveries row per recipient and
--      channel (and push device) and marks the outbox row 'sending'.
--   3. The pump queues due deliveries as River jobs (status 'queued', with a
--      fresh lease token); the job leases its row ('sending'), renders the
--      templates, calls the provider and records the outcome with a
--      compare-and-set on the token. A worker that dies leaves its lease to
--      expire; the pump re-queues the row with in_doubt = true and a new
--      token, and the stale job, should it ever run, finds the token changed
--      and does nothing.
--   4. When every delivery of an outbox row is final the row becomes 'sent'
--      (at least one sent), 'dead' (none sent, at least one dead) or
--      'cancelled'.
-- Retries, backoff and dead letters live here, not in River's job table, so
-- a dead letter stays visible (River deletes discarded jobs after 7 days).

-- +goose Up

-- A push device (FCM registration token). The token is sealed with AAD
-- "push_devices.token_enc:<hex of token_hash>"; token_hash (SHA-256 of the
-- token) finds a re-registered token without opening anything.
CREATE TABLE push_devices (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    platform        text        NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    label           text        NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    token_hash      bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    token_enc       bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    -- set when the provider says the token is gone (FCM UNREGISTERED) or
    -- the user removes the device; disabled devices get nothing.
    disabled_at     timestamptz,
    disabled_reason text,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX push_devices_user ON push_devices (user_id) WHERE disabled_at IS NULL;

-- Preferences per user and event. event '*' is the user's default row;
-- a row for an event overrides it column by column:
--   channels    NULL inherits; an empty array mutes the event
--   quiet_from, quiet_to
--               a daily window in the tenant's time zone during which SMS
--               and push wait (email is delivered: it does not ring);
--               NULL inherits; quiet_from = quiet_to means no quiet hours
--   locale      the template locale (only on the '*' row)
CREATE TABLE notification_preferences (
    tenant_id  bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    event      text        NOT NULL CHECK (event = '*' OR event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    channels   text[]      CHECK (channels <@ ARRAY['email', 'sms', 'push']::text[]),
    quiet_from time,
    quiet_to   time,
    locale     text        CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event),
    CHECK ((quiet_from IS NULL) = (quiet_to IS NULL)),
    CHECK (locale IS NULL OR event = '*'),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- A tenant's branding for messages. Without a row: the tenant's name, the
-- configured sender and locale 'en'.
CREATE TABLE notification_branding (
    tenant_id      bigint      PRIMARY KEY REFERENCES tenants (id),
    display_name   text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    from_address   text        CHECK (from_address ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    reply_to       text        CHECK (reply_to ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    support_email  text        NOT NULL DEFAULT '' CHECK (length(support_email) <= 254),
    support_phone  text        NOT NULL DEFAULT '' CHECK (length(support_phone) <= 40),
    website_url    text        NOT NULL DEFAULT '' CHECK (website_url = '' OR website_url ~ '^https?://'),
    logo_url       text        NOT NULL DEFAULT '' CHECK (logo_url = '' OR logo_url ~ '^https://'),
    brand_color    text        NOT NULL DEFAULT '#1f6feb' CHECK (brand_color ~ '^#[0-9a-fA-F]{6}$'),
    footer         text        NOT NULL DEFAULT '' CHECK (length(footer) <= 1000),
    default_locale text        NOT NULL DEFAULT 'en' CHECK (default_locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Tenant overrides of the embedded message templates, per event and
-- locale. source is a Go template file defining some of the blocks
-- "subject", "text", "html", "sms", "push_title", "push_body"; blocks it
-- does not define come from the embedded default.
CREATE TABLE notification_templates (
    tenant_id  bigint      NOT NULL REFERENCES tenants (id),
    event      text        NOT NULL CHECK (event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    locale     text        NOT NULL CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    source     text        NOT NULL CHECK (length(source) BETWEEN 1 AND 65536),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by bigint,
    PRIMARY KEY (tenant_id, event, locale)
);

-- The reminder and dunning policy of a tenant. Without a row the defaults
-- below apply. Days are calendar days in the tenant's zone; reminders go
-- out at send_at local time.
--   due_days        days before the due date to remind (bill.due_soon)
--   overdue_days    days after the due date to remind (payment.reminder),
--                   each a step of the escalation ladder (1-based)
--   second_channel_step
--                   from this overdue step on, a second channel is added
--                   to the consumer's own (0: never)
--   staff_step      from this overdue step on, staff are told too
--                   (payment.escalation; 0: never)
--   staff_role, staff_department
--                   who "staff" is: every active user of that role (and
--                   department, for officials)
CREATE TABLE reminder_policies (
    tenant_id           bigint      PRIMARY KEY REFERENCES tenants (id),
    due_days            integer[]   NOT NULL DEFAULT '{7,3,1}' CHECK (0 < ALL (due_days) AND 61 > ALL (due_days)),
    overdue_days        integer[]   NOT NULL DEFAULT '{1,7,15}' CHECK (0 < ALL (overdue_days) AND 366 > ALL (overdue_days)),
    second_channel_step integer     NOT NULL DEFAULT 2 CHECK (second_channel_step >= 0),
    staff_step          integer     NOT NULL DEFAULT 3 CHECK (staff_step >= 0),
    staff_role          text        NOT NULL DEFAULT 'official' CHECK (staff_role IN ('official', 'support', 'admin')),
    staff_department    text        DEFAULT 'billing',
    send_at             time        NOT NULL DEFAULT '10:00',
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One message to one recipient on one channel (one per push device).
--   status    pending   waits for next_attempt_at (new, retry, quiet hours)
--             queued    a River job was inserted for it (lease_token names it)
--             sending   a job holds the lease until lease_until
--             sent      the provider accepted it (final)
--             dead      the last attempt failed, or the provider refused it
--                       for good: a dead letter (NotificationSending), final
--                       until staff retry it
--             cancelled no longer wanted (the bill was paid, the device is
--                       gone, no address): final
--   in_doubt  a lease expired while 'sending': the provider may have the
--             message; the next attempt reconciles or relies on the
--             provider's idempotency (see alerts/notify)
--   idempotency_key
--             stable for the delivery's life: the webhook Idempotency-Key,
--             the email Message-ID's left part, the FCM collapse key
--   address_hint
--             the address masked for display (a***@example.com)
CREATE TABLE notification_deliveries (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id           bigint      NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    tenant_id           bigint      NOT NULL REFERENCES tenants (id),
    user_id             bigint,
    channel             text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    device_id           bigint      REFERENCES push_devices (id) ON DELETE SET NULL,
    -- why this channel: preference, forced (by the producer), fallback (no
    -- preferred channel had an address), escalation (a second channel)
    reason              text        NOT NULL CHECK (reason IN ('preference', 'forced', 'fallback', 'escalation')),
    status              text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'dead', 'cancelled')),
    attempts            integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        integer     NOT NULL CHECK (max_attempts > 0),
    next_attempt_at     timestamptz NOT NULL,
    lease_token         uuid,
    lease_until         timestamptz,
    in_doubt            boolean     NOT NULL DEFAULT false,
    idempotency_key     text        NOT NULL UNIQUE DEFAULT gen_random_uuid()::text,
    provider            text,
    provider_message_id text,
    address_hint        text        NOT NULL DEFAULT '',
    deferred_reason     text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    finished_at         timestamptz,
    UNIQUE NULLS NOT DISTINCT (outbox_id, user_id, channel, device_id),
    CHECK ((status IN ('queued', 'sending')) = (lease_token IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_leased ON notification_deliveries (lease_until) WHERE status IN ('queued', 'sending');
CREATE INDEX notification_deliveries_outbox ON notification_deliveries (outbox_id);
CREATE INDEX notification_deliveries_dead ON notification_deliveries (tenant_id, id DESC) WHERE status = 'dead';
CREATE INDEX notification_deliveries_user ON notification_deliveries (user_id, id DESC);

-- Every attempt of a delivery, for the delivery status API and for
-- post-mortems: outcome sent | retry | failed (permanent) | deferred.
CREATE TABLE notification_attempts (
    delivery_id bigint      NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'reconciled')),
    provider    text        NOT NULL DEFAULT '',
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose Down
DROP TABLE notification_attempts;
DROP TABLE notification_deliveries;
DROP TABLE reminder_policies;
DROP TABLE notification_templates;
DROP TABLE notification_branding;
DROP TABLE notification_preferences;
DROP TABLE push_devices;
