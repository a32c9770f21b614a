-- Outbox (guarantee 1 after the commit): a row is unpublished (NULL) until a dispatcher has
-- published it to its user's channel; every dispatcher re-publishes rows left unpublished.
-- The temporary default marks every existing row published without rewriting the table
-- (a non-volatile default is stored once in the catalogue); new rows then default to NULL.
ALTER TABLE tocsin_notifications ADD COLUMN published_at timestamptz DEFAULT now();
ALTER TABLE tocsin_notifications ALTER COLUMN published_at DROP DEFAULT;

-- The outbox scan: only unpublished rows, oldest first.
CREATE INDEX tocsin_notifications_unpublished
    ON tocsin_notifications (created_at) WHERE published_at IS NULL;
