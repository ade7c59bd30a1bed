-- Meetings of commission officials with delegations. A host or a delegation is never in two
-- overlapping meetings that are not cancelled: exclusion constraints guarantee it, so two
-- concurrent bookings of one slot cannot both succeed.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE meetings (
    election_id    text        NOT NULL,
    id             text        NOT NULL
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    title          text        NOT NULL CHECK (btrim(title) <> ''),
    -- The official, e.g. "Nurlan Abdirov, Chairman of the Central Election Commission".
    host           text        NOT NULL CHECK (btrim(host) <> ''),
    -- Hosts are the same person whatever the case and surrounding blanks.
    host_key       text        GENERATED ALWAYS AS (lower(btrim(host))) STORED,
    -- Delegation ids in the order the caller gave them; meeting_delegations mirrors them.
    delegation_ids text[]      NOT NULL CHECK (cardinality(delegation_ids) > 0),
    start_time     timestamptz NOT NULL,
    end_time       timestamptz NOT NULL,
    -- Half-open, so back-to-back meetings do not overlap.
    during         tstzrange   GENERATED ALWAYS AS (tstzrange(start_time, end_time, '[)')) STORED,
    location       text        NOT NULL DEFAULT '',
    topics         text[]      NOT NULL DEFAULT '{}',
    state          text        NOT NULL DEFAULT 'SCHEDULED' CHECK (state IN ('SCHEDULED', 'HELD', 'CANCELLED')),
    outcome        text        NOT NULL DEFAULT '',
    cancel_reason  text        NOT NULL DEFAULT '',
    create_time    timestamptz NOT NULL DEFAULT now(),
    update_time    timestamptz NOT NULL DEFAULT now(),
    etag           uuid        NOT NULL DEFAULT gen_random_uuid(),
    delete_time    timestamptz,
    PRIMARY KEY (election_id, id),
    CONSTRAINT meetings_election_fk FOREIGN KEY (election_id) REFERENCES elections (id),
    CONSTRAINT meetings_end_after_start CHECK (end_time > start_time),
    -- A host is in at most one meeting at a time (cancelled and deleted ones aside).
    CONSTRAINT meetings_host_conflict EXCLUDE USING gist
        (election_id WITH =, host_key WITH =, during WITH &&)
        WHERE (state <> 'CANCELLED' AND delete_time IS NULL)
);
COMMENT ON TABLE meetings IS 'Meetings of officials with delegations (soft-deleted).';
CREATE INDEX meetings_list ON meetings (election_id, create_time, id);
CREATE INDEX meetings_by_start ON meetings (election_id, start_time, id);
CREATE INDEX meetings_by_delegation ON meetings USING gin (delegation_ids);

-- One row per (meeting, delegation), with the meeting's time range and whether it holds its
-- slot, so that an exclusion constraint can keep each delegation in one meeting at a time.
-- Written only by the trigger below, from meetings.
CREATE TABLE meeting_delegations (
    election_id   text      NOT NULL,
    meeting_id    text      NOT NULL,
    delegation_id text      NOT NULL,
    during        tstzrange NOT NULL,
    holds_slot    boolean   NOT NULL,
    PRIMARY KEY (election_id, meeting_id, delegation_id),
    CONSTRAINT meeting_delegations_meeting_fk FOREIGN KEY (election_id, meeting_id)
        REFERENCES meetings (election_id, id) ON DELETE CASCADE,
    CONSTRAINT meeting_delegations_delegation_fk FOREIGN KEY (election_id, delegation_id)
        REFERENCES delegations (election_id, id),
    CONSTRAINT meetings_delegation_conflict EXCLUDE USING gist
        (election_id WITH =, delegation_id WITH =, during WITH &&) WHERE (holds_slot)
);
CREATE INDEX meeting_delegations_by_delegation ON meeting_delegations (election_id, delegation_id);

CREATE FUNCTION meetings_mirror_delegations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM meeting_delegations WHERE election_id = NEW.election_id AND meeting_id = NEW.id;
    INSERT INTO meeting_delegations (election_id, meeting_id, delegation_id, during, holds_slot)
    SELECT NEW.election_id, NEW.id, d, NEW.during, NEW.state <> 'CANCELLED' AND NEW.delete_time IS NULL
      FROM unnest(NEW.delegation_ids) AS d;
    RETURN NULL;
END $$;
CREATE TRIGGER meetings_mirror_delegations
    AFTER INSERT OR UPDATE OF delegation_ids, start_time, end_time, state, delete_time ON meetings
    FOR EACH ROW EXECUTE FUNCTION meetings_mirror_delegations();
