-- Accounts and sessions (issue 6, owner: api/account). Users, their
-- profiles, login sessions (refresh-token families), email verification,
-- the notification outbox and the audit log.
--
-- Conventions every 3xx table follows:
--   * Every row carries tenant_id, and children reference parents by
--     (tenant_id, id), so a row can never point into another tenant.
--   * Sealed columns (suffix _enc, and users.totp_secret) hold AES-256-GCM
--     ciphertexts laid out as  key id (1 byte) | nonce (12) | ciphertext+tag,
--     sealed with the additional data "<table>.<column>:<row key>" named in
--     the column's comment. The key id lets keys rotate: old rows still open,
--     new writes use the current key, `meterd keys reencrypt` rewrites old
--     rows. Nothing sealed is ever stored in plaintext anywhere else (audit
--     rows show "[encrypted]").
--   * Times are timestamptz; ids are bigint identities.

-- +goose Up

-- A login. Email is unique per tenant and stored lower-cased; it is the
-- login name, so it is not sealed (the profile's contact email is).
CREATE TABLE users (
    id                   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            bigint      NOT NULL REFERENCES tenants (id),
    email                text        NOT NULL CHECK (email = lower(email) AND length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    -- consumer: sees own data; official: department staff (bill runs,
    -- tariffs, meters); support: support desk; admin: everything in the tenant.
    role                 text        NOT NULL CHECK (role IN ('consumer', 'official', 'support', 'admin')),
    -- The official's department (e.g. metering, billing); NULL for others.
    department           text        CHECK (department ~ '^[a-z][a-z0-9_-]{1,39}$'),
    -- suspended accounts cannot log in (AccountLocked) and lose their sessions.
    status               text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- PHC string: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>.
    password_hash        text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    email_verified_at    timestamptz,
    -- Lockout: consecutive failed logins since the last success, and the
    -- time until which logins are refused (AccountLocked).
    failed_logins        integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    last_failed_login_at timestamptz,
    locked_until         timestamptz,
    last_login_at        timestamptz,
    -- Optional TOTP second factor (RFC 6238, SHA-1, 6 digits, 30 s). The
    -- secret is sealed with AAD "users.totp_secret:<id>"; it exists from
    -- setup, and is enforced once totp_enabled_at is set. totp_last_step
    -- is the last accepted time step, so a code cannot be replayed.
    totp_secret          bytea,
    totp_enabled_at      timestamptz,
    totp_last_step       bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'official' OR department IS NOT NULL),
    CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL),
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);
CREATE INDEX users_tenant_role ON users (tenant_id, role, id);

-- A person's profile: one per user. Contact details are sealed with AAD
-- "user_profiles.<column>:<user_id>"; address_enc holds the JSON object
-- {"line1","line2","city","state","postal_code","country"}.
CREATE TABLE user_profiles (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint      NOT NULL,
    user_id     bigint      NOT NULL UNIQUE,
    name        text        NOT NULL CHECK (name <> '' AND length(name) <= 200),
    email_enc   bytea,
    phone_enc   bytea,
    address_enc bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- A login session: one refresh-token family. Access tokens carry its id as
-- "sid", so revoking the session (logout, refresh-token reuse, password
-- change, suspension) ends every token of the family.
CREATE TABLE auth_sessions (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint      NOT NULL,
    user_id           bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_refreshed_at timestamptz NOT NULL DEFAULT now(),
    -- absolute end of the family: refreshing never extends past it.
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz,
    revoked_reason    text        CHECK (revoked_reason IN ('logout', 'reuse_detected', 'password_changed', 'suspended', 'admin')),
    address           inet,
    user_agent        text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 256),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at);

-- Refresh tokens: random 256-bit values, stored as SHA-256 only. A token
-- is used once: refreshing sets used_at and issues the next token of the
-- family; presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id bigint      NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Email verification tokens: random 256-bit values, stored as SHA-256,
-- single use, expiring. The token itself travels only in the sealed
-- notification_outbox.secret of the message that delivers it.
CREATE TABLE email_verifications (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    tenant_id  bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);

-- The notification outbox: every event that should reach a person is
-- written here in the same transaction as the change that caused it. The
-- notifications component (issue 8) claims pending rows (FOR UPDATE SKIP
-- LOCKED), renders event + payload through the recipient's preferences and
-- templates, and records the outcome. Events written by the API:
--   account.verify_email   payload {email, link_path}; secret = the token
--   ticket.created | ticket.assigned | ticket.status_changed | ticket.comment
--                          payload {ticket_id, subject, status, ...}
-- payload holds template data only: no contact details, no secrets. A
-- secret the message must carry is sealed in `secret` with AAD
-- "notification_outbox.secret:<dedupe_key>".
CREATE TABLE notification_outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint      NOT NULL REFERENCES tenants (id),
    -- recipient; NULL for messages to an address that is not a user yet.
    user_id      bigint,
    event        text        NOT NULL CHECK (event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    -- forced channel; NULL lets the recipient's preferences decide.
    channel      text        CHECK (channel IN ('email', 'sms', 'push')),
    payload      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    secret       bytea,
    -- idempotency: an event enqueued twice with the same key is one message.
    dedupe_key   text        UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'cancelled')),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    sent_at      timestamptz,
    CHECK (secret IS NULL OR dedupe_key IS NOT NULL),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notification_outbox_pending ON notification_outbox (available_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_user ON notification_outbox (user_id, id);

-- The audit log: every state change a person makes (and every login
-- attempt), append-only. before/after are JSON snapshots with sealed
-- fields shown as "[encrypted]" and secrets omitted.
CREATE TABLE audit_log (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint      REFERENCES tenants (id),
    at            timestamptz NOT NULL DEFAULT now(),
    -- NULL actor: anonymous (registration, failed login) or the system.
    actor_user_id bigint,
    actor_role    text        NOT NULL DEFAULT '',
    action        text        NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    entity_type   text        NOT NULL,
    entity_id     text        NOT NULL DEFAULT '',
    before        jsonb,
    after         jsonb,
    address       inet,
    request_id    text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, id DESC);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity_type, entity_id, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, id DESC);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE notification_outbox;
DROP TABLE email_verifications;
DROP TABLE refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE user_profiles;
DROP TABLE users;
