-- Accreditation decisions (API.md, issue 18): the commission's act behind each decision, an
-- election that requires one, and how long badges stay valid. The application checks each
-- rule first (src/domain/election.rs, src/domain/observer/accreditation.rs); these hold them
-- for every other code path.

-- Whether every accreditation, rejection and revocation must name the commission's act.
ALTER TABLE elections ADD COLUMN decision_required boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN elections.decision_required IS
    'When true, no observer is accredited, rejected or revoked without a decision (observers_decision_required).';

-- Badges expire this many days after voting day: 1 to 3650 (ten years), 30 by default.
ALTER TABLE elections ADD COLUMN badge_validity_days integer NOT NULL DEFAULT 30
    CONSTRAINT elections_badge_validity_days_range CHECK (badge_validity_days BETWEEN 1 AND 3650);

-- The act behind the last decision, e.g. `Resolution No. 25/312 of 2023-03-14`: one line of
-- text as the registry keeps it (text::LABEL, at most 200 characters); empty when none.
ALTER TABLE observers ADD COLUMN decision text NOT NULL DEFAULT ''
    CONSTRAINT observers_decision_text
        CHECK (registry_text_ok(decision, false) AND char_length(decision) <= 200);

-- An election that requires decisions takes none without one: a change of state must carry
-- a non-blank decision.
CREATE FUNCTION observers_check_decision_required() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accreditation_state IS DISTINCT FROM OLD.accreditation_state
       AND btrim(NEW.decision) = ''
       AND EXISTS (SELECT 1 FROM elections e
                    WHERE e.id = NEW.election_id AND e.decision_required) THEN
        RAISE EXCEPTION 'observer % of election %: the election requires a decision behind every accreditation decision',
            NEW.id, NEW.election_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_decision_required';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_decision_required
    BEFORE UPDATE OF accreditation_state ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_check_decision_required();
