-- Support desk and reminder preferences (issue 6, owner: api/support and
-- api/account).

-- +goose Up

-- A support staff member's desk settings. skills are ticket categories
-- (billing, payment, meter, connection, outage, usage, account, other).
-- Automatic assignment picks, among available staff whose skills contain
-- the ticket's category and whose open load is below max_open, the least
-- loaded (ties: longest since last assignment).
CREATE TABLE support_staff (
    user_id          bigint      PRIMARY KEY,
    tenant_id        bigint      NOT NULL,
    skills           text[]      NOT NULL DEFAULT '{}',
    available        boolean     NOT NULL DEFAULT true,
    max_open         integer     NOT NULL DEFAULT 20 CHECK (max_open > 0),
    last_assigned_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX support_staff_skills ON support_staff USING gin (skills);

-- A support ticket (the requirement's SupportTicket; a query raised through
-- /api/notifications/query is one too). Workflow:
--   open → assigned → in_progress → resolved → closed, and resolved|closed
--   → open again on reopen.
-- awaiting_staff flags a ticket no available staff member could take
-- (SupportStaffUnavailable); it stays open and queued until someone frees
-- up. sla_due_at is created_at + the SLA of its priority.
CREATE TABLE support_tickets (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint      NOT NULL,
    user_id           bigint      NOT NULL,
    category          text        NOT NULL CHECK (category IN ('billing', 'payment', 'meter', 'connection', 'outage', 'usage', 'account', 'other')),
    priority          text        NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject           text        NOT NULL CHECK (subject <> '' AND length(subject) <= 200),
    description       text        NOT NULL CHECK (description <> '' AND length(description) <= 5000),
    property_id       bigint,
    connection_id     bigint,
    status            text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'assigned', 'in_progress', 'resolved', 'closed')),
    assigned_staff_id bigint,
    awaiting_staff    boolean     NOT NULL DEFAULT false,
    queued_since      timestamptz,
    sla_due_at        timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    reopen_count      integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    CHECK ((status IN ('assigned', 'in_progress')) <= (assigned_staff_id IS NOT NULL)),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, assigned_staff_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id)
);
CREATE INDEX support_tickets_user ON support_tickets (tenant_id, user_id, id DESC);
CREATE INDEX support_tickets_assignee ON support_tickets (tenant_id, assigned_staff_id, id DESC);
CREATE INDEX support_tickets_queue ON support_tickets (tenant_id, created_at) WHERE awaiting_staff;

-- Comments on a ticket. internal comments are staff notes the consumer
-- never sees.
CREATE TABLE support_ticket_comments (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint      NOT NULL,
    ticket_id  bigint      NOT NULL,
    author_id  bigint      NOT NULL,
    body       text        NOT NULL CHECK (body <> '' AND length(body) <= 5000),
    internal   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES support_tickets (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX support_ticket_comments_ticket ON support_ticket_comments (ticket_id, id);

-- A ticket's timeline: every change, in order. kind: created, queued,
-- assigned, status_changed, reopened, commented, priority_changed.
-- actor_id NULL is the system (automatic assignment).
CREATE TABLE support_ticket_events (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint      NOT NULL,
    ticket_id           bigint      NOT NULL,
    at                  timestamptz NOT NULL DEFAULT now(),
    actor_id            bigint,
    kind                text        NOT NULL CHECK (kind IN ('created', 'queued', 'assigned', 'status_changed', 'reopened', 'commented', 'priority_changed')),
    from_status         text,
    to_status           text,
    note                text        NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    visible_to_consumer boolean     NOT NULL DEFAULT true,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES support_tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX support_ticket_events_ticket ON support_ticket_events (ticket_id, id);

-- A consumer's bill reminder: days before the due date and the channel,
-- for one bill (bill_id) or for all their bills (bill_id NULL). The
-- notifications component (issue 8) schedules reminders from these rows;
-- billing (issue 5) owns bills, so bill_id has no foreign key until the
-- bills table exists (a later migration in 2xx/5xx may add it).
CREATE TABLE reminder_preferences (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    bill_id     bigint,
    days_before integer     NOT NULL CHECK (days_before BETWEEN 1 AND 60),
    channel     text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    UNIQUE NULLS NOT DISTINCT (user_id, bill_id)
);

-- +goose Down
DROP TABLE reminder_preferences;
DROP TABLE support_ticket_events;
DROP TABLE support_ticket_comments;
DROP TABLE support_tickets;
DROP TABLE support_staff;
