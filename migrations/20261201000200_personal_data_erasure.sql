-- Issue 19: retention of personal data (API.md, "Retention of personal data"). Once an
-- election's retention period has passed, or an admin calls ErasePersonalData, its
-- observers' travel document numbers, dates of birth, e-mail addresses and phone numbers
-- are erased, and `personal_data_erase_time` is set on the election and on each observer.
-- The application decides when (src/domain/retention.rs); the rules below hold what erasure
-- may and may not do for every code path, SQL typed by hand included.

ALTER TABLE observers ADD COLUMN personal_data_erase_time timestamptz;
COMMENT ON COLUMN observers.personal_data_erase_time IS
    'When the observer''s personal data was erased (with its election''s); NULL while kept.';

-- An erased observer has no travel document number: NULL rather than a placeholder, so that
-- the canonical-form CHECK and the one-person-per-election unique index (NULLs are distinct)
-- keep holding for every observer whose data is kept. NULL only once erased, and an erased
-- observer's personal columns stay empty: no update may put them back.
ALTER TABLE observers ALTER COLUMN travel_document_number DROP NOT NULL;
ALTER TABLE observers ADD CONSTRAINT observers_personal_data_erased CHECK (
    CASE WHEN personal_data_erase_time IS NULL THEN travel_document_number IS NOT NULL
         ELSE travel_document_number IS NULL AND date_of_birth IS NULL
              AND email = '' AND phone = '' END);

-- A decided observer's identity still changes only by a recorded correction, with one
-- exception: the erasure itself, which empties the travel document number and the date of
-- birth in the same update that sets personal_data_erase_time (the CHECK above makes sure
-- that nothing but emptying happens to them). Names, citizenship and organization remain.
CREATE OR REPLACE FUNCTION observers_guard_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    erasing boolean := OLD.personal_data_erase_time IS NULL
                       AND NEW.personal_data_erase_time IS NOT NULL;
BEGIN
    IF OLD.accreditation_state <> 'PENDING'
       AND (NEW.given_name IS DISTINCT FROM OLD.given_name
            OR NEW.family_name IS DISTINCT FROM OLD.family_name
            OR NEW.citizenship IS DISTINCT FROM OLD.citizenship
            OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
            OR (NOT erasing AND (NEW.travel_document_number IS DISTINCT FROM OLD.travel_document_number
                                 OR NEW.date_of_birth IS DISTINCT FROM OLD.date_of_birth)))
       AND NOT EXISTS (SELECT 1 FROM observer_corrections c
                        WHERE c.election_id = NEW.election_id AND c.observer_id = NEW.id
                          AND c.txid = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'observer % of election % is %: its identity changes only by a recorded correction',
            NEW.id, NEW.election_id, OLD.accreditation_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_identity_after_decision';
    END IF;
    RETURN NEW;
END $$;

-- Once an election's personal data is erased, no observer is registered in it (its
-- personal data would outlive the retention period); an observer is never inserted as
-- erased; and an erasure is never undone. FOR SHARE waits for an erasure in progress (it
-- holds the election's row FOR UPDATE) and then reads what it committed, so a registration
-- racing an erasure either commits first (and is erased) or is refused.
CREATE FUNCTION observers_guard_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    erased timestamptz;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT e.personal_data_erase_time INTO erased
          FROM elections e WHERE e.id = NEW.election_id FOR SHARE;
        IF erased IS NOT NULL OR NEW.personal_data_erase_time IS NOT NULL THEN
            RAISE EXCEPTION 'the personal data of election % was erased: no observer is registered in it any more',
                NEW.election_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_personal_data_erased';
        END IF;
    ELSIF OLD.personal_data_erase_time IS NOT NULL
          AND NEW.personal_data_erase_time IS DISTINCT FROM OLD.personal_data_erase_time THEN
        RAISE EXCEPTION 'observer % of election %: an erasure of personal data is never undone',
            NEW.id, NEW.election_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_personal_data_erased';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_personal_data_erasure
    BEFORE INSERT OR UPDATE OF personal_data_erase_time ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_guard_erasure();

CREATE FUNCTION elections_guard_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.personal_data_erase_time IS NOT NULL
       AND NEW.personal_data_erase_time IS DISTINCT FROM OLD.personal_data_erase_time THEN
        RAISE EXCEPTION 'election %: an erasure of personal data is never undone', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'elections_personal_data_erased';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER elections_personal_data_erasure
    BEFORE UPDATE OF personal_data_erase_time ON elections
    FOR EACH ROW EXECUTE FUNCTION elections_guard_erasure();

-- The background erasure looks for elections whose data is still kept.
CREATE INDEX elections_personal_data_kept ON elections (id)
    WHERE personal_data_erase_time IS NULL AND personal_data_retention_days > 0;
