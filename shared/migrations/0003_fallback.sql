-- Offline fallback (docs/fallback.md): push and email jobs, their send records, user profiles.
-- IF NOT EXISTS: a test database may drop tocsin_schema_version and replay every migration.
-- No foreign key to tocsin_notifications: a job whose notification is gone is cancelled when
-- it runs, and TRUNCATE of the notifications stays possible without CASCADE.

-- One job per notification and channel, created in the notification's transaction.
-- A worker leases a job (locked_by, locked_until); an expired lease is free to take again.
CREATE TABLE IF NOT EXISTS tocsin_fallback_jobs (
    id               bigserial PRIMARY KEY,
    notification_id  uuid NOT NULL,
    user_id          text NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('push', 'email')),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'cancelled', 'failed')),
    due_at           timestamptz NOT NULL,
    default_on       boolean NOT NULL,   -- the channel's default before user preferences
    email            text,               -- the address given on the send, if any
    attempts         int NOT NULL DEFAULT 0,
    locked_by        text,
    locked_until     timestamptz,
    outcome          text,               -- sent, digest, read, archived, no_address, ...
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT tocsin_fallback_jobs_once UNIQUE (notification_id, channel)
);

-- Claims look only at pending jobs, soonest first.
CREATE INDEX IF NOT EXISTS tocsin_fallback_jobs_due
    ON tocsin_fallback_jobs (due_at) WHERE state = 'pending';
-- Digests and cancellation by user.
CREATE INDEX IF NOT EXISTS tocsin_fallback_jobs_user
    ON tocsin_fallback_jobs (user_id, channel, due_at) WHERE state = 'pending';

-- At most one send per notification and channel: written ('preparing') before the send,
-- moved to 'sending' at the point of no return (SMTP DATA, the push POST), then 'sent'.
-- After a crash, 'preparing' is taken over by the next lease holder; 'sending' becomes
-- 'unknown' and is never sent again (at most once).
CREATE TABLE IF NOT EXISTS tocsin_fallback_sends (
    notification_id  uuid NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('push', 'email')),
    job_id           bigint NOT NULL,
    state            text NOT NULL
                     CHECK (state IN ('preparing', 'sending', 'sent', 'failed', 'unknown')),
    owner            text NOT NULL,      -- the worker that holds it (fencing token)
    digest           boolean NOT NULL DEFAULT false,
    detail           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tocsin_fallback_sends_once PRIMARY KEY (notification_id, channel)
);

-- Where a user's email goes, set by the producer (PUT /v1/users/{user_id}/profile).
CREATE TABLE IF NOT EXISTS tocsin_user_profiles (
    user_id     text PRIMARY KEY,
    email       text,
    locale      text,
    time_zone   text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
