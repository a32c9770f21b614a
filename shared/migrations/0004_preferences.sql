-- Per-user notification preferences (shared/preferences.py holds the JSON form and its checks).
CREATE TABLE tocsin_user_preferences (
    user_id      text PRIMARY KEY,
    preferences  jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Web push subscriptions: a user may have several (one per browser); an endpoint belongs to
-- exactly one user, the one who registered it last.
CREATE TABLE tocsin_push_subscriptions (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL,
    endpoint    text NOT NULL UNIQUE,
    p256dh      text NOT NULL,
    auth        text NOT NULL,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tocsin_push_subscriptions_user ON tocsin_push_subscriptions (user_id);
