-- A send is one call of tocsin_send (below): one round trip, one transaction. It creates the
-- notification's fallback jobs too, so the preference rule a job is created under is in SQL:
-- tocsin_fallback_allowed mirrors shared/preferences.py (Preferences.allows on what
-- preferences_store.from_stored reads), and tests/store/test_send.py compares the two on valid
-- and broken rows. The worker applies the Python rule again when a job runs.
-- OR REPLACE: a test database drops the tables and replays every migration.

-- What Preferences.from_wire accepts, short of the time zone's existence (PostgreSQL and
-- Python ship their own tz databases): a row that fails reads as the defaults.
CREATE OR REPLACE FUNCTION tocsin_preferences_usable(prefs jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT coalesce(jsonb_typeof(prefs) = 'object'
    AND NOT EXISTS (
        SELECT 1 FROM jsonb_object_keys(prefs) AS k WHERE k NOT IN ('channels', 'quietHours'))
    AND CASE
        WHEN NOT prefs ? 'channels' THEN true
        WHEN jsonb_typeof(prefs -> 'channels') <> 'object' THEN false
        ELSE NOT EXISTS (
            SELECT 1 FROM jsonb_each(prefs -> 'channels') AS c(channel, rules)
            WHERE c.channel NOT IN ('push', 'email')
                OR jsonb_typeof(c.rules) <> 'object'
                OR (SELECT count(*) FROM jsonb_object_keys(c.rules)) > 100
                OR EXISTS (
                    SELECT 1 FROM jsonb_each(c.rules) AS r(kind, allowed)
                    WHERE jsonb_typeof(r.allowed) <> 'boolean'
                        OR (r.kind <> '*' AND NOT (length(r.kind) <= 96
                            AND r.kind ~ '^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_.-]{0,62}$'))))
    END
    AND CASE
        WHEN coalesce(jsonb_typeof(prefs -> 'quietHours'), 'null') = 'null' THEN true
        WHEN jsonb_typeof(prefs -> 'quietHours') <> 'object' THEN false
        ELSE NOT EXISTS (
                SELECT 1 FROM jsonb_object_keys(prefs -> 'quietHours') AS k
                WHERE k NOT IN ('start', 'end', 'timeZone'))
            AND jsonb_typeof(prefs -> 'quietHours' -> 'start') = 'string'
            AND jsonb_typeof(prefs -> 'quietHours' -> 'end') = 'string'
            AND (prefs -> 'quietHours' ->> 'start') ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
            AND (prefs -> 'quietHours' ->> 'end') ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
            AND (prefs -> 'quietHours' ->> 'start') <> (prefs -> 'quietHours' ->> 'end')
            AND jsonb_typeof(prefs -> 'quietHours' -> 'timeZone') = 'string'
            AND length(prefs -> 'quietHours' ->> 'timeZone') BETWEEN 1 AND 64
    END, false)
$$;

-- Preferences.allows: the type's own rule, else the channel's "*", else the default.
-- NULL preferences (no row) are the defaults.
CREATE OR REPLACE FUNCTION tocsin_fallback_allowed(
    prefs jsonb, channel text, kind text, default_on boolean
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN prefs IS NULL OR NOT tocsin_preferences_usable(prefs) THEN default_on
    ELSE coalesce(
        (prefs -> 'channels' -> channel -> kind)::boolean,
        (prefs -> 'channels' -> channel -> '*')::boolean,
        default_on)
END
$$;

-- Store one notification for each of `users` (sorted, distinct), with its fallback jobs:
-- one per new row and planned channel (job_channels, job_delays, job_default_on) that the
-- user's preferences allow and that has somewhere to go (an address, a push subscription).
-- Each user's seq is bumped under that user's counter row lock (counters locked in user order:
-- no deadlocks between bulk sends), so seqs are contiguous and commit in order. Users already
-- holding a notification under the idempotency key get that row back (created = false) and
-- no new seq. A generic plan: custom plans of this statement cost more to plan than to run;
-- no JIT: its cost estimate for a bulk send starts the JIT compiler (about 45 ms a call).
CREATE OR REPLACE FUNCTION tocsin_send(
    in_users text[], in_type text, in_title text, in_body text, in_action_url text,
    in_data jsonb, in_idempotency_key text, in_expires_at timestamptz,
    job_channels text[], job_delays float8[], job_default_on boolean[], in_email text
) RETURNS TABLE (created boolean, note tocsin_notifications)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
    IF in_idempotency_key IS NOT NULL THEN
        -- Lock first: the lookup below (a new snapshot) then sees every send with this key
        -- that locked before us, committed.
        INSERT INTO tocsin_user_seq AS s (user_id)
        SELECT u FROM unnest(in_users) AS u ORDER BY u
        ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq;
    END IF;
    RETURN QUERY
    WITH existing AS (
        SELECT e FROM tocsin_notifications AS e
        WHERE in_idempotency_key IS NOT NULL AND e.idempotency_key = in_idempotency_key
            AND e.user_id = ANY(in_users)
    ), bumped AS (
        INSERT INTO tocsin_user_seq AS s (user_id, last_seq)
        SELECT u, 1 FROM unnest(in_users) AS u
        WHERE NOT EXISTS (SELECT 1 FROM existing AS x WHERE (x.e).user_id = u)
        ORDER BY u
        ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + 1
        RETURNING s.user_id, s.last_seq
    ), inserted AS (
        INSERT INTO tocsin_notifications AS n
            (user_id, seq, type, title, body, action_url, data, idempotency_key, expires_at)
        SELECT b.user_id, b.last_seq, in_type, in_title, in_body, in_action_url, in_data,
            in_idempotency_key, in_expires_at
        FROM bumped AS b
        RETURNING n
    ), jobs AS (
        INSERT INTO tocsin_fallback_jobs AS f
            (notification_id, user_id, channel, due_at, default_on, email)
        SELECT (i.n).id, (i.n).user_id, j.channel, now() + make_interval(secs => j.delay),
            j.default_on, CASE WHEN j.channel = 'email' THEN in_email END
        FROM inserted AS i
        CROSS JOIN unnest(job_channels, job_delays, job_default_on)
            AS j(channel, delay, default_on)
        LEFT JOIN tocsin_user_preferences AS p ON p.user_id = (i.n).user_id
        WHERE CASE WHEN p.preferences IS NULL THEN j.default_on
                ELSE tocsin_fallback_allowed(p.preferences, j.channel, in_type, j.default_on)
            END
            AND CASE j.channel
                WHEN 'email' THEN in_email IS NOT NULL OR EXISTS (
                    SELECT 1 FROM tocsin_user_profiles AS pr
                    WHERE pr.user_id = (i.n).user_id AND pr.email IS NOT NULL)
                WHEN 'push' THEN EXISTS (
                    SELECT 1 FROM tocsin_push_subscriptions AS ps
                    WHERE ps.user_id = (i.n).user_id)
                ELSE false
            END
        ON CONFLICT (notification_id, channel) DO NOTHING
    )
    SELECT true, i.n FROM inserted AS i
    UNION ALL
    SELECT false, x.e FROM existing AS x;
END
$$;

-- Many sends in one call (concurrent single sends coalesced by the dispatcher): row i sends
-- (in_types[i], in_titles[i], ...) to in_users[i]. Each user's counter is bumped once by the
-- number of its new rows, which take the seqs in row order. A (user, key) pair appears at
-- most once in a call (the caller defers repeats to the next call). Fallback jobs per row:
-- push when push_delays[i] is not null, email when email_delays[i] is not null, under the same
-- rule as tocsin_send. Returns the row number (ord), as tocsin_send does otherwise.
CREATE OR REPLACE FUNCTION tocsin_send_many(
    in_users text[], in_types text[], in_titles text[], in_bodies text[],
    in_action_urls text[], in_data jsonb[], in_keys text[], in_expires timestamptz[],
    push_delays float8[], push_default_on boolean[], email_delays float8[],
    email_default_on boolean[], in_emails text[]
) RETURNS TABLE (ord bigint, created boolean, note tocsin_notifications)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(in_keys) AS k WHERE k IS NOT NULL) THEN
        -- As in tocsin_send: the key lookup below then sees every earlier send, committed.
        INSERT INTO tocsin_user_seq AS s (user_id)
        SELECT DISTINCT u FROM unnest(in_users) AS u ORDER BY u
        ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq;
    END IF;
    RETURN QUERY
    WITH r AS (
        SELECT * FROM unnest(
            in_users, in_types, in_titles, in_bodies, in_action_urls, in_data, in_keys,
            in_expires, push_delays, push_default_on, email_delays, email_default_on, in_emails
        ) WITH ORDINALITY AS r(user_id, type, title, body, action_url, data, idempotency_key,
            expires_at, push_delay, push_default, email_delay, email_default, email, ord)
    ), existing AS (
        SELECT r.ord, e FROM r JOIN tocsin_notifications AS e
            ON r.idempotency_key IS NOT NULL AND e.user_id = r.user_id
            AND e.idempotency_key = r.idempotency_key
    ), fresh AS (
        SELECT r.*,
            row_number() OVER (PARTITION BY r.user_id ORDER BY r.ord) AS k,
            count(*) OVER (PARTITION BY r.user_id) AS n
        FROM r WHERE NOT EXISTS (SELECT 1 FROM existing AS x WHERE x.ord = r.ord)
    ), bumped AS (
        INSERT INTO tocsin_user_seq AS s (user_id, last_seq)
        SELECT f.user_id, count(*) FROM fresh AS f GROUP BY f.user_id ORDER BY f.user_id
        ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
        RETURNING s.user_id, s.last_seq
    ), numbered AS (
        SELECT f.*, b.last_seq - f.n + f.k AS seq FROM fresh AS f JOIN bumped AS b USING (user_id)
    ), inserted AS (
        INSERT INTO tocsin_notifications AS t
            (user_id, seq, type, title, body, action_url, data, idempotency_key, expires_at)
        SELECT m.user_id, m.seq, m.type, m.title, m.body, m.action_url, m.data,
            m.idempotency_key, m.expires_at
        FROM numbered AS m ORDER BY m.ord
        RETURNING t
    ), matched AS (
        SELECT m.*, i.t FROM inserted AS i
        JOIN numbered AS m ON m.user_id = (i.t).user_id AND m.seq = (i.t).seq
    ), jobs AS (
        INSERT INTO tocsin_fallback_jobs AS f
            (notification_id, user_id, channel, due_at, default_on, email)
        SELECT (m.t).id, m.user_id, j.channel, now() + make_interval(secs => j.delay),
            j.default_on, CASE WHEN j.channel = 'email' THEN m.email END
        FROM matched AS m
        CROSS JOIN LATERAL (VALUES ('push', m.push_delay, m.push_default),
            ('email', m.email_delay, m.email_default)) AS j(channel, delay, default_on)
        LEFT JOIN tocsin_user_preferences AS p ON p.user_id = m.user_id
        WHERE j.delay IS NOT NULL
            AND CASE WHEN p.preferences IS NULL THEN j.default_on
                ELSE tocsin_fallback_allowed(p.preferences, j.channel, m.type, j.default_on)
            END
            AND CASE j.channel
                WHEN 'email' THEN m.email IS NOT NULL OR EXISTS (
                    SELECT 1 FROM tocsin_user_profiles AS pr
                    WHERE pr.user_id = m.user_id AND pr.email IS NOT NULL)
                WHEN 'push' THEN EXISTS (
                    SELECT 1 FROM tocsin_push_subscriptions AS ps WHERE ps.user_id = m.user_id)
                ELSE false
            END
        ON CONFLICT (notification_id, channel) DO NOTHING
    )
    SELECT m.ord, true, m.t FROM matched AS m
    UNION ALL
    SELECT x.ord, false, x.e FROM existing AS x;
END
$$;
