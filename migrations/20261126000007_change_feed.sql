-- The change feed (WatchObservers, WatchDelegations, WatchMeetings): every committed change to
-- an observer, delegation or meeting, written by triggers in the same transaction as the
-- change, and numbered per election in commit order.
--
-- Sequence values are handed out when rows are inserted, not when transactions commit, so a
-- reader that saw number 11 could later find a 10 committed after it. Here a row gets its
-- position only at commit time, from a deferred constraint trigger that takes the election's
-- counter row lock and keeps it until the commit is done: positions of one election are given
-- out in the order transactions commit, and a reader that sees position N sees every
-- position below N.

CREATE TABLE change_positions (
    election_id   text   PRIMARY KEY,
    last_position bigint NOT NULL
);
COMMENT ON TABLE change_positions IS
    'Last change-feed position per election; its row lock orders commits (kept after an election is deleted, so positions never repeat).';

CREATE TABLE changes (
    serial        bigserial   PRIMARY KEY,
    election_id   text        NOT NULL,
    -- NULL until the transaction commits.
    position      bigint,
    resource_type text        NOT NULL CHECK (resource_type IN ('observer', 'delegation', 'meeting')),
    change_type   text        NOT NULL CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED', 'UNDELETED')),
    -- The row after the change (before it, for a removal).
    resource      jsonb       NOT NULL,
    change_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid          xid8        NOT NULL DEFAULT pg_current_xact_id()
);
COMMENT ON TABLE changes IS 'The change feed: committed changes per election in commit order (position), kept for the retention period.';

CREATE UNIQUE INDEX changes_in_commit_order ON changes (election_id, resource_type, position);
CREATE UNIQUE INDEX changes_position_unique ON changes (election_id, position);
CREATE INDEX changes_awaiting_position ON changes (txid) WHERE position IS NULL;
CREATE INDEX changes_by_time ON changes (change_time);

-- Gives this transaction's changes their positions, per election in a fixed order (no
-- deadlock between two transactions touching the same elections), and wakes the watchers.
CREATE FUNCTION changes_take_positions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    election text;
    added    bigint;
    last     bigint;
BEGIN
    -- A constraint trigger fires once per row; the first call does the work for all.
    IF current_setting('observer_registry.changes_positioned', true) = 'on' THEN
        RETURN NULL;
    END IF;
    FOR election, added IN
        SELECT election_id, count(*) FROM changes
         WHERE txid = pg_current_xact_id() AND position IS NULL
         GROUP BY election_id ORDER BY election_id
    LOOP
        INSERT INTO change_positions AS p (election_id, last_position) VALUES (election, added)
        ON CONFLICT (election_id) DO UPDATE SET last_position = p.last_position + added
        RETURNING p.last_position INTO last;
        UPDATE changes c SET position = last - added + s.rank, change_time = clock_timestamp()
          FROM (SELECT serial, row_number() OVER (ORDER BY serial) AS rank
                  FROM changes
                 WHERE txid = pg_current_xact_id() AND position IS NULL
                   AND election_id = election) s
         WHERE c.serial = s.serial;
        PERFORM pg_notify('observer_registry_changes', election);
    END LOOP;
    PERFORM set_config('observer_registry.changes_positioned', 'on', true);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER changes_positions_at_commit
    AFTER INSERT ON changes DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION changes_take_positions();

-- One row per changed resource, per statement, in key order. An UPDATE that changed nothing
-- is not a change.
CREATE FUNCTION changes_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT n.election_id, kind, 'CREATED', to_jsonb(n) FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT n.election_id, kind,
               CASE WHEN o.delete_time IS NULL AND n.delete_time IS NOT NULL THEN 'DELETED'
                    WHEN o.delete_time IS NOT NULL AND n.delete_time IS NULL THEN 'UNDELETED'
                    ELSE 'UPDATED' END,
               to_jsonb(n)
          FROM new_rows n JOIN old_rows o ON o.election_id = n.election_id AND o.id = n.id
         WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)
         ORDER BY n.id;
    ELSE
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT o.election_id, kind, 'DELETED', to_jsonb(o) FROM old_rows o ORDER BY o.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER observers_changes_insert AFTER INSERT ON observers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('observer');
CREATE TRIGGER observers_changes_update AFTER UPDATE ON observers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('observer');
CREATE TRIGGER observers_changes_delete AFTER DELETE ON observers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('observer');

CREATE TRIGGER delegations_changes_insert AFTER INSERT ON delegations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('delegation');
CREATE TRIGGER delegations_changes_update AFTER UPDATE ON delegations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('delegation');
CREATE TRIGGER delegations_changes_delete AFTER DELETE ON delegations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('delegation');

CREATE TRIGGER meetings_changes_insert AFTER INSERT ON meetings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('meeting');
CREATE TRIGGER meetings_changes_update AFTER UPDATE ON meetings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('meeting');
CREATE TRIGGER meetings_changes_delete AFTER DELETE ON meetings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record('meeting');
