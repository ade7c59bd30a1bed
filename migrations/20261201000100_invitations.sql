-- Invitations (issue 19): the host state invites organizations and states, and only invited
-- ones send observers. The application checks each rule first (src/domain/invitation.rs);
-- these hold them for concurrent callers and SQL typed by hand.

CREATE TABLE invitations (
    election_id        text        NOT NULL,
    id                 text        NOT NULL
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    organization_id    text        NOT NULL,
    send_date          date        NOT NULL,
    -- The letter's reference: one line (text::LABEL).
    reference          text        NOT NULL DEFAULT '',
    state              text        NOT NULL DEFAULT 'SENT'
        CONSTRAINT invitations_state CHECK (state IN ('SENT', 'ACCEPTED', 'DECLINED', 'WITHDRAWN')),
    reply_date         date,
    expected_observers integer     NOT NULL DEFAULT 0,
    notes              text        NOT NULL DEFAULT '',
    -- Why it was declined or withdrawn.
    reason             text        NOT NULL DEFAULT '',
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now(),
    etag               uuid        NOT NULL DEFAULT gen_random_uuid(),
    PRIMARY KEY (election_id, id),
    CONSTRAINT invitations_election_fk FOREIGN KEY (election_id) REFERENCES elections (id),
    CONSTRAINT invitations_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id),
    -- A reply does not come before the letter.
    CONSTRAINT invitations_reply_after_send CHECK (reply_date IS NULL OR reply_date >= send_date),
    -- domain::invitation::MAX_EXPECTED_OBSERVERS.
    CONSTRAINT invitations_expected_observers_range CHECK (expected_observers BETWEEN 0 AND 10000),
    -- A reply is on record exactly when one came: none while SENT, one when ACCEPTED or
    -- DECLINED (a WITHDRAWN invitation keeps what it had); observers only from an acceptance.
    CONSTRAINT invitations_reply_recorded CHECK (
        CASE state
            WHEN 'SENT' THEN reply_date IS NULL AND expected_observers = 0 AND reason = ''
            WHEN 'ACCEPTED' THEN reply_date IS NOT NULL AND reason = ''
            WHEN 'DECLINED' THEN reply_date IS NOT NULL AND expected_observers = 0
            ELSE btrim(reason) <> ''
        END),
    CONSTRAINT invitations_text CHECK (
        registry_text_ok(reference, false) AND char_length(reference) <= 200
        AND registry_text_ok(notes, true) AND char_length(notes) <= 10000
        AND registry_text_ok(reason, true) AND char_length(reason) <= 2000)
);
COMMENT ON TABLE invitations IS
    'Invitations of the host state to send observers; deleted for good only while SENT.';

-- One invitation per organization and election, whatever its state: a withdrawn one stays as
-- the record of what was sent.
CREATE UNIQUE INDEX invitations_one_per_organization ON invitations (election_id, organization_id);
CREATE INDEX invitations_list ON invitations (election_id, create_time, id);
CREATE INDEX invitations_by_organization ON invitations (organization_id);

-- The state machine: SENT -> ACCEPTED | DECLINED | WITHDRAWN, ACCEPTED -> WITHDRAWN; and what
-- the letter said (organization, date, reference, notes) changes only while SENT.
CREATE FUNCTION invitations_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (NEW.state = OLD.state
            OR (OLD.state = 'SENT' AND NEW.state IN ('ACCEPTED', 'DECLINED', 'WITHDRAWN'))
            OR (OLD.state = 'ACCEPTED' AND NEW.state = 'WITHDRAWN'))
       OR (OLD.state <> 'SENT'
           AND (NEW.organization_id, NEW.send_date, NEW.reference, NEW.notes)
               IS DISTINCT FROM (OLD.organization_id, OLD.send_date, OLD.reference, OLD.notes)) THEN
        RAISE EXCEPTION 'invitation % of election %: % -> % is not a transition of an invitation, and only a SENT one changes',
            NEW.id, NEW.election_id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invitations_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invitations_transition BEFORE UPDATE ON invitations
    FOR EACH ROW EXECUTE FUNCTION invitations_check_transition();

-- Only a SENT invitation is deleted; one with a reply is withdrawn instead. DeleteElection
-- with `force` removes every child of the election, and says so for this transaction only
-- (store::elections::delete_children).
CREATE FUNCTION invitations_check_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'SENT'
       AND current_setting('observer_registry.removing_election', true) IS DISTINCT FROM OLD.election_id THEN
        RAISE EXCEPTION 'invitation % of election % is %: only a SENT invitation is deleted',
            OLD.id, OLD.election_id, OLD.state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invitations_deleted_only_while_sent';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER invitations_deleted_only_while_sent BEFORE DELETE ON invitations
    FOR EACH ROW EXECUTE FUNCTION invitations_check_delete();

-- NOT_INVITED: in an election that requires invitations, a delegation or an observer is
-- created, moved to an organization, and an observer accredited, only for an organization
-- with an ACCEPTED invitation. The invitation is share-locked until commit: a withdrawal
-- running at the same time waits for this transaction, and one that committed first leaves
-- no ACCEPTED row to find (READ COMMITTED re-reads the row after the wait).
CREATE FUNCTION organization_check_invited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Nested, because a delegation has no accreditation state to name.
    IF TG_OP = 'UPDATE' AND NEW.organization_id IS NOT DISTINCT FROM OLD.organization_id THEN
        IF TG_TABLE_NAME <> 'observers' THEN
            RETURN NEW;
        END IF;
        IF NEW.accreditation_state <> 'ACCREDITED'
           OR OLD.accreditation_state IS NOT DISTINCT FROM 'ACCREDITED' THEN
            RETURN NEW;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM elections e WHERE e.id = NEW.election_id AND e.invitation_required) THEN
        RETURN NEW;
    END IF;
    PERFORM 1 FROM invitations i
      WHERE i.election_id = NEW.election_id AND i.organization_id = NEW.organization_id
        AND i.state = 'ACCEPTED'
        FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% % of election %: organization % has no accepted invitation, which the election requires',
            TG_TABLE_NAME, NEW.id, NEW.election_id, NEW.organization_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'organization_invited';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_organization_invited
    BEFORE INSERT OR UPDATE OF organization_id, accreditation_state ON observers
    FOR EACH ROW EXECUTE FUNCTION organization_check_invited();
CREATE TRIGGER delegations_organization_invited
    BEFORE INSERT OR UPDATE OF organization_id ON delegations
    FOR EACH ROW EXECUTE FUNCTION organization_check_invited();

-- The change feed (WatchInvitations). Invitations are deleted for good, not soft-deleted, so
-- their changes are plain: created, updated, deleted (the row as it was).
ALTER TABLE changes DROP CONSTRAINT changes_resource_type_check;
ALTER TABLE changes ADD CONSTRAINT changes_resource_type_check
    CHECK (resource_type IN ('observer', 'delegation', 'meeting', 'invitation'));

CREATE FUNCTION changes_record_removable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT n.election_id, kind, 'CREATED', to_jsonb(n) FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT n.election_id, kind, 'UPDATED', to_jsonb(n)
          FROM new_rows n JOIN old_rows o ON o.election_id = n.election_id AND o.id = n.id
         WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)
         ORDER BY n.id;
    ELSE
        INSERT INTO changes (election_id, resource_type, change_type, resource)
        SELECT o.election_id, kind, 'DELETED', to_jsonb(o) FROM old_rows o ORDER BY o.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER invitations_changes_insert AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record_removable('invitation');
CREATE TRIGGER invitations_changes_update AFTER UPDATE ON invitations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record_removable('invitation');
CREATE TRIGGER invitations_changes_delete AFTER DELETE ON invitations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION changes_record_removable('invitation');
