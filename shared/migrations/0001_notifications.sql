-- Per-user sequence counters: the row lock serialises inserts for one user so seqs
-- are contiguous and commit in order (guarantee 2).
CREATE TABLE tocsin_user_seq (
    user_id   text PRIMARY KEY,
    last_seq  bigint NOT NULL DEFAULT 0
);

CREATE TABLE tocsin_notifications (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text NOT NULL,
    seq              bigint NOT NULL,
    type             text NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL,
    action_url       text,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    delivered_at     timestamptz,
    seen_at          timestamptz,
    read_at          timestamptz,
    archived_at      timestamptz,
    CONSTRAINT tocsin_notifications_user_seq UNIQUE (user_id, seq)
);

-- Idempotent retries: one notification per (user, key).
CREATE UNIQUE INDEX tocsin_notifications_idempotency
    ON tocsin_notifications (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Unread feed, unread count and read-all touch only unread rows.
CREATE INDEX tocsin_notifications_unread
    ON tocsin_notifications (user_id, seq) WHERE read_at IS NULL AND archived_at IS NULL;
-- Unseen count and mark-all-seen.
CREATE INDEX tocsin_notifications_unseen
    ON tocsin_notifications (user_id, seq) WHERE seen_at IS NULL AND archived_at IS NULL;
-- Backlog for a brand-new client and batched acks.
CREATE INDEX tocsin_notifications_undelivered
    ON tocsin_notifications (user_id, seq) WHERE delivered_at IS NULL;
-- Feed filtered by type.
CREATE INDEX tocsin_notifications_user_type
    ON tocsin_notifications (user_id, type, seq);
