-- The registry core: delegations, observers and accreditation. The application checks every
-- rule first for a precise error; the constraints and triggers below guarantee them when
-- concurrent callers race.

CREATE TABLE delegations (
    election_id      text        NOT NULL,
    id               text        NOT NULL
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    display_name     text        NOT NULL CHECK (btrim(display_name) <> ''),
    organization_id  text        NOT NULL,
    -- Head of delegation: an observer who is a member (FK added below, after observers).
    head_observer_id text,
    arrival_date     date,
    departure_date   date,
    notes            text        NOT NULL DEFAULT '',
    -- Observers of this delegation that are not deleted; kept by the observers triggers in
    -- the same transaction as the change.
    member_count     integer     NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    etag             uuid        NOT NULL DEFAULT gen_random_uuid(),
    delete_time      timestamptz,
    PRIMARY KEY (election_id, id),
    -- Target of the observers' composite key: a member's delegation has its organization.
    CONSTRAINT delegations_organization_key UNIQUE (election_id, id, organization_id),
    CONSTRAINT delegations_election_fk FOREIGN KEY (election_id) REFERENCES elections (id),
    CONSTRAINT delegations_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id),
    -- Departure is not before arrival (BRIEF: a delegation's stay).
    CONSTRAINT delegations_stay_in_order CHECK (departure_date >= arrival_date)
);
COMMENT ON TABLE delegations IS 'Delegations sent by an organization to one election (soft-deleted).';
CREATE INDEX delegations_list ON delegations (election_id, create_time, id);
CREATE INDEX delegations_by_organization ON delegations (organization_id);

CREATE TABLE observers (
    election_id            text        NOT NULL,
    id                     text        NOT NULL
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    given_name             text        NOT NULL CHECK (btrim(given_name) <> ''),
    family_name            text        NOT NULL CHECK (btrim(family_name) <> ''),
    citizenship            char(2)     NOT NULL CHECK (citizenship ~ '^[A-Z]{2}$'),
    organization_id        text        NOT NULL,
    delegation_id          text,
    role                   text        CHECK (role IN ('LONG_TERM_OBSERVER', 'SHORT_TERM_OBSERVER', 'EXPERT',
                                                       'INTERPRETER', 'COORDINATOR')),
    -- Personal data.
    travel_document_number text        NOT NULL CHECK (btrim(travel_document_number) <> ''),
    date_of_birth          date,
    email                  text        NOT NULL DEFAULT '',
    phone                  text        NOT NULL DEFAULT '',
    deployment_region      text        NOT NULL DEFAULT '',
    accreditation_state    text        NOT NULL DEFAULT 'PENDING'
        CHECK (accreditation_state IN ('PENDING', 'ACCREDITED', 'REJECTED', 'REVOKED')),
    accreditation_number   text,
    decide_time            timestamptz,
    decision_reason        text        NOT NULL DEFAULT '',
    create_time            timestamptz NOT NULL DEFAULT now(),
    update_time            timestamptz NOT NULL DEFAULT now(),
    etag                   uuid        NOT NULL DEFAULT gen_random_uuid(),
    delete_time            timestamptz,
    PRIMARY KEY (election_id, id),
    -- Target of the delegations' head key: the head is one of the delegation's members.
    CONSTRAINT observers_delegation_key UNIQUE (election_id, id, delegation_id),
    CONSTRAINT observers_election_fk FOREIGN KEY (election_id) REFERENCES elections (id),
    CONSTRAINT observers_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id),
    -- A member's delegation is of the same election and sent by the same organization.
    CONSTRAINT observers_delegation_same_organization
        FOREIGN KEY (election_id, delegation_id, organization_id)
        REFERENCES delegations (election_id, id, organization_id),
    -- Accredited and revoked observers hold a number; pending and rejected ones do not.
    CONSTRAINT observers_number_matches_state CHECK (
        (accreditation_state IN ('ACCREDITED', 'REVOKED')) = (accreditation_number IS NOT NULL)),
    -- Every decision has a time, and rejections and revocations a reason.
    CONSTRAINT observers_decision_recorded CHECK (
        accreditation_state = 'PENDING' OR decide_time IS NOT NULL),
    CONSTRAINT observers_decision_has_reason CHECK (
        accreditation_state NOT IN ('REJECTED', 'REVOKED') OR btrim(decision_reason) <> '')
);
COMMENT ON TABLE observers IS 'Observers registered for one election (soft-deleted); accreditation state and number.';
COMMENT ON COLUMN observers.travel_document_number IS 'Personal data. Trimmed and upper-cased.';

-- BRIEF: one person is registered at most once per election among records not deleted.
CREATE UNIQUE INDEX observers_one_person_per_election
    ON observers (election_id, citizenship, travel_document_number) WHERE delete_time IS NULL;
-- Accreditation numbers are unique within the election, also after revocation.
CREATE UNIQUE INDEX observers_accreditation_number
    ON observers (election_id, accreditation_number) WHERE accreditation_number IS NOT NULL;
-- List order and the filters API.md names, fast on a million observers.
CREATE INDEX observers_list ON observers (election_id, create_time, id);
CREATE INDEX observers_by_family_name ON observers (election_id, family_name, id);
CREATE INDEX observers_by_citizenship ON observers (election_id, citizenship);
CREATE INDEX observers_by_organization ON observers (organization_id, election_id);
CREATE INDEX observers_by_delegation ON observers (election_id, delegation_id) WHERE delegation_id IS NOT NULL;
CREATE INDEX observers_by_state ON observers (election_id, accreditation_state);

-- The head is a member. Deferred: the trigger below clears a departing head at the end of
-- the same statement, and the key is checked at commit.
ALTER TABLE delegations ADD CONSTRAINT delegations_head_is_member
    FOREIGN KEY (election_id, head_observer_id, id) REFERENCES observers (election_id, id, delegation_id)
    DEFERRABLE INITIALLY DEFERRED;

-- Accreditation numbers are assigned from one counter per election, incremented in the
-- accrediting transaction: the row lock orders concurrent accreditations, and a number is
-- never handed out twice, also after a revocation.
CREATE TABLE accreditation_counters (
    election_id text    PRIMARY KEY REFERENCES elections (id) ON DELETE CASCADE,
    last_number integer NOT NULL CHECK (last_number > 0)
);

-- International observers only: the citizenship is never the election's host country.
CREATE FUNCTION observers_check_citizenship() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM elections WHERE id = NEW.election_id AND host_country = NEW.citizenship) THEN
        RAISE EXCEPTION 'citizenship % is the host country of election %', NEW.citizenship, NEW.election_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_not_host_country_citizen';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_not_host_country_citizen
    BEFORE INSERT OR UPDATE OF citizenship ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_check_citizenship();

-- The accreditation state machine: PENDING -> ACCREDITED | REJECTED, ACCREDITED -> REVOKED;
-- a number, once given, never changes.
CREATE FUNCTION observers_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accreditation_state IS DISTINCT FROM OLD.accreditation_state AND NOT (
           (OLD.accreditation_state = 'PENDING' AND NEW.accreditation_state IN ('ACCREDITED', 'REJECTED'))
        OR (OLD.accreditation_state = 'ACCREDITED' AND NEW.accreditation_state = 'REVOKED')) THEN
        RAISE EXCEPTION 'accreditation cannot go from % to %', OLD.accreditation_state, NEW.accreditation_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_transition';
    END IF;
    IF OLD.accreditation_number IS NOT NULL
       AND NEW.accreditation_number IS DISTINCT FROM OLD.accreditation_number THEN
        RAISE EXCEPTION 'accreditation number % cannot change', OLD.accreditation_number
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_accreditation_transition
    BEFORE UPDATE OF accreditation_state, accreditation_number ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_check_transition();

-- member_count and heads, per statement (a batch of 1000 is one update per delegation):
-- members are observers with a delegation that are not deleted; a head who leaves the
-- delegation or is deleted is no longer head.
CREATE FUNCTION observers_maintain_delegations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE delegations d SET member_count = d.member_count + m.n
          FROM (SELECT election_id, delegation_id, count(*) AS n FROM new_rows
                 WHERE delegation_id IS NOT NULL AND delete_time IS NULL
                 GROUP BY election_id, delegation_id) m
         WHERE d.election_id = m.election_id AND d.id = m.delegation_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE delegations d SET member_count = d.member_count + m.n
          FROM (SELECT election_id, delegation_id, sum(n) AS n FROM (
                    SELECT election_id, delegation_id, 1 AS n FROM new_rows
                     WHERE delegation_id IS NOT NULL AND delete_time IS NULL
                    UNION ALL
                    SELECT election_id, delegation_id, -1 FROM old_rows
                     WHERE delegation_id IS NOT NULL AND delete_time IS NULL) changes
                 GROUP BY election_id, delegation_id HAVING sum(n) <> 0) m
         WHERE d.election_id = m.election_id AND d.id = m.delegation_id;
        UPDATE delegations d SET head_observer_id = NULL
          FROM new_rows n
         WHERE d.election_id = n.election_id AND d.head_observer_id = n.id
           AND (n.delegation_id IS DISTINCT FROM d.id OR n.delete_time IS NOT NULL);
    ELSE
        UPDATE delegations d SET member_count = d.member_count - m.n
          FROM (SELECT election_id, delegation_id, count(*) AS n FROM old_rows
                 WHERE delegation_id IS NOT NULL AND delete_time IS NULL
                 GROUP BY election_id, delegation_id) m
         WHERE d.election_id = m.election_id AND d.id = m.delegation_id;
        UPDATE delegations d SET head_observer_id = NULL
          FROM old_rows o
         WHERE d.election_id = o.election_id AND d.head_observer_id = o.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER observers_members_after_insert AFTER INSERT ON observers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_delegations();
CREATE TRIGGER observers_members_after_update AFTER UPDATE ON observers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_delegations();
CREATE TRIGGER observers_members_after_delete AFTER DELETE ON observers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_delegations();
