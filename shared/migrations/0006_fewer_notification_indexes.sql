-- Every index on tocsin_notifications is written by every send: 8 indexes made a 10,000-user
-- bulk insert cost about 4 times the rows alone (issue 9). Two are folded into others; the
-- test tests/store/test_indexes.py EXPLAINs every query of shared/repository.py against a
-- filled table and fails on a sequential scan of tocsin_notifications.

-- Unread and unseen were two indexes on (user_id, seq) for the same live rows: a row is seen
-- when it is read (mark_read and mark_all_read set both), so the unseen rows are among the
-- unread ones except for rows marked unread again, which are unread anyway. One index holds
-- both: the counts read it whole, the unread feed and read-all/seen-all filter it on the way.
CREATE INDEX tocsin_notifications_unread_or_unseen
    ON tocsin_notifications (user_id, seq)
    WHERE archived_at IS NULL AND (read_at IS NULL OR seen_at IS NULL);
DROP INDEX tocsin_notifications_unread;
DROP INDEX tocsin_notifications_unseen;

-- The feed filtered by type walks the user's rows newest first on (user_id, seq) (the
-- tocsin_notifications_user_seq constraint) and stops at the page's end: a second
-- (user_id, type, seq) copy of every row is not worth its write on every send.
DROP INDEX tocsin_notifications_user_type;
