-- The record is the official record (API.md, ObserverService). The application checks each
-- rule first for a precise error (src/domain/); the constraints and triggers below hold the
-- same rules for every code path, SQL typed by hand included.
--
-- Existing data is brought into line first: text is normalized, travel document numbers
-- are canonicalized, and where that would merge two records or reissue a number, the
-- migration stops with a message naming them, for an operator to resolve by hand.

-- 1. Text: NFC, no control characters (LF only in multi-line fields), no invisible format
-- characters (zero-width spaces, bidirectional overrides and isolates, the BOM); the same
-- rule as src/domain/text.rs. SQL functions, so that PostgreSQL inlines them into the CHECKs.
CREATE FUNCTION registry_text_ok(value text, multi_line boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT value IS NFC NORMALIZED
       AND value !~ CASE WHEN multi_line
           THEN '[\x01-\x09\x0B-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]'
           ELSE '[\x01-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]' END
$$;
COMMENT ON FUNCTION registry_text_ok IS 'The text rule of API.md: NFC, no control or invisible format characters.';

-- What existing text becomes: the forbidden characters dropped, then composed.
CREATE FUNCTION pg_temp.cleaned(value text, multi_line boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT normalize(regexp_replace(value, CASE WHEN multi_line
           THEN '[\x01-\x09\x0B-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]'
           ELSE '[\x01-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]' END,
           '', 'g'), NFC)
$$;

UPDATE elections SET display_name = pg_temp.cleaned(display_name, false),
                     description = pg_temp.cleaned(description, true)
 WHERE NOT (registry_text_ok(display_name, false) AND registry_text_ok(description, true));
UPDATE organizations SET display_name = pg_temp.cleaned(display_name, false),
                         abbreviation = pg_temp.cleaned(abbreviation, false)
 WHERE NOT (registry_text_ok(display_name, false) AND registry_text_ok(abbreviation, false));
UPDATE delegations SET display_name = pg_temp.cleaned(display_name, false),
                       notes = pg_temp.cleaned(notes, true)
 WHERE NOT (registry_text_ok(display_name, false) AND registry_text_ok(notes, true));
UPDATE observers SET given_name = pg_temp.cleaned(given_name, false),
                     family_name = pg_temp.cleaned(family_name, false),
                     deployment_region = pg_temp.cleaned(deployment_region, false),
                     email = pg_temp.cleaned(email, false),
                     phone = pg_temp.cleaned(phone, false),
                     decision_reason = pg_temp.cleaned(decision_reason, true)
 WHERE NOT (registry_text_ok(given_name, false) AND registry_text_ok(family_name, false)
        AND registry_text_ok(deployment_region, false) AND registry_text_ok(email, false)
        AND registry_text_ok(phone, false) AND registry_text_ok(decision_reason, true));
UPDATE meetings SET title = pg_temp.cleaned(title, false),
                    host = pg_temp.cleaned(host, false),
                    location = pg_temp.cleaned(location, false),
                    topics = ARRAY(SELECT pg_temp.cleaned(t, false) FROM unnest(topics) t),
                    outcome = pg_temp.cleaned(outcome, true),
                    cancel_reason = pg_temp.cleaned(cancel_reason, true)
 WHERE NOT (registry_text_ok(title, false) AND registry_text_ok(host, false)
        AND registry_text_ok(location, false)
        AND registry_text_ok(array_to_string(topics, ' '), false)
        AND registry_text_ok(outcome, true) AND registry_text_ok(cancel_reason, true));

ALTER TABLE elections ADD CONSTRAINT elections_text CHECK (
    registry_text_ok(display_name, false) AND registry_text_ok(description, true));
ALTER TABLE organizations ADD CONSTRAINT organizations_text CHECK (
    registry_text_ok(display_name, false) AND registry_text_ok(abbreviation, false));
ALTER TABLE delegations ADD CONSTRAINT delegations_text CHECK (
    registry_text_ok(display_name, false) AND registry_text_ok(notes, true));
ALTER TABLE observers ADD CONSTRAINT observers_text CHECK (
    registry_text_ok(given_name, false) AND registry_text_ok(family_name, false)
    AND registry_text_ok(deployment_region, false) AND registry_text_ok(email, false)
    AND registry_text_ok(phone, false) AND registry_text_ok(decision_reason, true));
-- Topics are one line each: joined by a space, one check covers them all.
ALTER TABLE meetings ADD CONSTRAINT meetings_text CHECK (
    registry_text_ok(title, false) AND registry_text_ok(host, false)
    AND registry_text_ok(location, false) AND registry_text_ok(array_to_string(topics, ' '), false)
    AND registry_text_ok(outcome, true) AND registry_text_ok(cancel_reason, true));

-- 2. Travel document numbers in canonical form: spaces, hyphens and dots removed, letters
-- upper-cased, then 5-20 characters of A-Z and 0-9 (ICAO Doc 9303). `AB 123-4567` and
-- `ab1234567` are one document, so one person.
DO $$
DECLARE
    merged  text;
    invalid text;
BEGIN
    SELECT string_agg(format('%s (citizenship %s, document %s: observers %s)',
                             election_id, citizenship, canonical, ids), '; ')
      INTO merged
      FROM (SELECT election_id, citizenship, canonical, string_agg(id, ', ' ORDER BY id) AS ids
              FROM (SELECT election_id, citizenship, id,
                           upper(regexp_replace(travel_document_number, '[ .-]', '', 'g')) AS canonical
                      FROM observers WHERE delete_time IS NULL) people
             GROUP BY election_id, citizenship, canonical
            HAVING count(*) > 1) clashes;
    IF merged IS NOT NULL THEN
        RAISE EXCEPTION 'canonical travel document numbers would make these observers one person: %', merged
            USING HINT = 'Delete the duplicate registrations (or correct their document numbers) and start again.';
    END IF;
    SELECT string_agg(format('%s/%s (%s)', election_id, id, travel_document_number), '; ')
      INTO invalid
      FROM observers
     WHERE upper(regexp_replace(travel_document_number, '[ .-]', '', 'g')) !~ '^[A-Z0-9]{5,20}$';
    IF invalid IS NOT NULL THEN
        RAISE EXCEPTION 'these travel document numbers are not 5-20 characters of A-Z and 0-9 once spaces, hyphens and dots are removed: %', invalid
            USING HINT = 'Correct the document numbers and start again.';
    END IF;
END $$;
UPDATE observers SET travel_document_number = upper(regexp_replace(travel_document_number, '[ .-]', '', 'g'))
 WHERE travel_document_number !~ '^[A-Z0-9]{5,20}$';
ALTER TABLE observers ADD CONSTRAINT observers_travel_document_canonical
    CHECK (travel_document_number ~ '^[A-Z0-9]{5,20}$');
COMMENT ON COLUMN observers.travel_document_number IS
    'Personal data. Canonical: 5-20 characters of A-Z and 0-9 (spaces, hyphens and dots removed, upper-cased).';

-- 3. Accreditation numbers: `{HOST}-{YEAR}-{SEQ:06}`, one sequence per host country and year
-- of voting day across all elections; unique in the whole registry, in decision order,
-- without gaps, never issued twice (not after revocation, deletion, or an election deleted
-- and created again under the same id). PostgreSQL issues them: the trigger below takes
-- the next number when an observer becomes ACCREDITED, and refuses any other.
DO $$
DECLARE
    reissued text;
BEGIN
    SELECT string_agg(format('%s (elections %s)', accreditation_number, elections), '; ')
      INTO reissued
      FROM (SELECT accreditation_number, string_agg(election_id || '/' || id, ', ') AS elections
              FROM observers WHERE accreditation_number IS NOT NULL
             GROUP BY accreditation_number HAVING count(*) > 1) twice;
    IF reissued IS NOT NULL THEN
        RAISE EXCEPTION 'these accreditation numbers were issued more than once: %', reissued
            USING HINT = 'Numbers are now unique in the whole registry: revoke and renumber by hand, then start again.';
    END IF;
END $$;

CREATE TABLE accreditation_sequences (
    host_country text    NOT NULL CHECK (host_country ~ '^[A-Z]{2}$'),
    voting_year  integer NOT NULL CHECK (voting_year BETWEEN 1 AND 9999),
    -- The last number issued; 0 before the first.
    last_number  integer NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (host_country, voting_year)
);
COMMENT ON TABLE accreditation_sequences IS
    'The last accreditation number issued per host country and voting year (API.md: one sequence across elections).';

INSERT INTO accreditation_sequences (host_country, voting_year, last_number)
SELECT substring(accreditation_number FROM '^([A-Z]{2})-'),
       substring(accreditation_number FROM '^[A-Z]{2}-([0-9]{4})-')::integer,
       max(substring(accreditation_number FROM '-([0-9]+)$')::integer)
  FROM observers
 WHERE accreditation_number ~ '^[A-Z]{2}-[0-9]{4}-[0-9]+$'
 GROUP BY 1, 2;
DROP TABLE accreditation_counters;

DROP INDEX observers_accreditation_number;
CREATE UNIQUE INDEX observers_accreditation_number ON observers (accreditation_number)
    WHERE accreditation_number IS NOT NULL;

-- A sequence only moves forward, one number at a time, and is never removed.
CREATE FUNCTION accreditation_sequences_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'accreditation sequence %-% cannot be removed', OLD.host_country, OLD.voting_year
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accreditation_sequences_forward_only';
    END IF;
    IF NEW.host_country <> OLD.host_country OR NEW.voting_year <> OLD.voting_year
       OR NEW.last_number NOT IN (OLD.last_number, OLD.last_number + 1) THEN
        RAISE EXCEPTION 'accreditation sequence %-% moves forward by one number at a time', OLD.host_country, OLD.voting_year
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accreditation_sequences_forward_only';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accreditation_sequences_forward_only BEFORE UPDATE OR DELETE ON accreditation_sequences
    FOR EACH ROW EXECUTE FUNCTION accreditation_sequences_forward_only();
CREATE TRIGGER accreditation_sequences_no_truncate BEFORE TRUNCATE ON accreditation_sequences
    FOR EACH STATEMENT EXECUTE FUNCTION accreditation_sequences_forward_only();

-- No gap: at commit, the last number of a sequence that moved is held by an observer.
CREATE FUNCTION accreditation_sequences_without_gaps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_number > 0 AND NOT EXISTS (
        SELECT 1 FROM observers
         WHERE accreditation_number = format('%s-%s-%s', NEW.host_country, NEW.voting_year,
                                             lpad(NEW.last_number::text, 6, '0'))) THEN
        RAISE EXCEPTION 'accreditation number %-%-% was taken but not issued', NEW.host_country,
            NEW.voting_year, lpad(NEW.last_number::text, 6, '0')
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accreditation_sequences_without_gaps';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER accreditation_sequences_without_gaps
    AFTER INSERT OR UPDATE ON accreditation_sequences DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION accreditation_sequences_without_gaps();

-- The state machine, and the number: PENDING -> ACCREDITED | REJECTED, ACCREDITED ->
-- REVOKED. Becoming ACCREDITED takes the next number of the election's sequence; a number
-- given with it must be that one. A number, once given, never changes. New observers are
-- PENDING, with no number.
CREATE OR REPLACE FUNCTION observers_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    host   text;
    year   integer;
    issued integer;
    number text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.accreditation_state <> 'PENDING' OR NEW.accreditation_number IS NOT NULL THEN
            RAISE EXCEPTION 'a new observer is PENDING, without an accreditation number'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_transition';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.accreditation_state IS DISTINCT FROM OLD.accreditation_state AND NOT (
           (OLD.accreditation_state = 'PENDING' AND NEW.accreditation_state IN ('ACCREDITED', 'REJECTED'))
        OR (OLD.accreditation_state = 'ACCREDITED' AND NEW.accreditation_state = 'REVOKED')) THEN
        RAISE EXCEPTION 'accreditation cannot go from % to %', OLD.accreditation_state, NEW.accreditation_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_transition';
    END IF;
    IF OLD.accreditation_number IS NOT NULL THEN
        IF NEW.accreditation_number IS DISTINCT FROM OLD.accreditation_number THEN
            RAISE EXCEPTION 'accreditation number % cannot change', OLD.accreditation_number
                USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_transition';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.accreditation_state = 'PENDING' AND NEW.accreditation_state = 'ACCREDITED' THEN
        SELECT e.host_country, extract(year FROM e.voting_day)::integer INTO host, year
          FROM elections e WHERE e.id = NEW.election_id;
        INSERT INTO accreditation_sequences AS s (host_country, voting_year, last_number)
        VALUES (host, year, 1)
        ON CONFLICT (host_country, voting_year) DO UPDATE SET last_number = s.last_number + 1
        RETURNING s.last_number INTO issued;
        number := format('%s-%s-%s', host, year, lpad(issued::text, 6, '0'));
        IF NEW.accreditation_number IS NOT NULL AND NEW.accreditation_number <> number THEN
            RAISE EXCEPTION 'accreditation number % is not the next one (%)', NEW.accreditation_number, number
                USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_number_next';
        END IF;
        NEW.accreditation_number := number;
    ELSIF NEW.accreditation_number IS NOT NULL THEN
        RAISE EXCEPTION 'an accreditation number is issued only when an observer is accredited'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_accreditation_number_next';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER observers_accreditation_transition ON observers;
CREATE TRIGGER observers_accreditation_transition
    BEFORE INSERT OR UPDATE OF accreditation_state, accreditation_number ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_check_transition();

-- 4. Once decided (ACCREDITED, REJECTED or REVOKED), an observer's identity changes only by a
-- recorded correction of the accreditation office (CorrectObserver), written in the same
-- transaction as the change.
CREATE TABLE observer_corrections (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    election_id text        NOT NULL,
    observer_id text        NOT NULL,
    -- The identity fields corrected, as the request's update mask names them.
    fields      text[]      NOT NULL CHECK (cardinality(fields) > 0),
    reason      text        NOT NULL CHECK (btrim(reason) <> '' AND registry_text_ok(reason, true)),
    actor       text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT observer_corrections_observer_fk FOREIGN KEY (election_id, observer_id)
        REFERENCES observers (election_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE observer_corrections IS
    'Corrections of decided observers'' identities (CorrectObserver): who, why, which fields.';
CREATE INDEX observer_corrections_by_observer ON observer_corrections (election_id, observer_id, txid);

CREATE FUNCTION observers_guard_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.accreditation_state <> 'PENDING'
       AND (NEW.given_name IS DISTINCT FROM OLD.given_name
            OR NEW.family_name IS DISTINCT FROM OLD.family_name
            OR NEW.citizenship IS DISTINCT FROM OLD.citizenship
            OR NEW.travel_document_number IS DISTINCT FROM OLD.travel_document_number
            OR NEW.date_of_birth IS DISTINCT FROM OLD.date_of_birth
            OR NEW.organization_id IS DISTINCT FROM OLD.organization_id)
       AND NOT EXISTS (SELECT 1 FROM observer_corrections c
                        WHERE c.election_id = NEW.election_id AND c.observer_id = NEW.id
                          AND c.txid = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'observer % of election % is %: its identity changes only by a recorded correction',
            NEW.id, NEW.election_id, OLD.accreditation_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_identity_after_decision';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER observers_identity_after_decision
    BEFORE UPDATE OF given_name, family_name, citizenship, travel_document_number, date_of_birth,
                     organization_id ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_guard_identity();

CREATE FUNCTION observer_corrections_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'corrections are never changed'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'observer_corrections_append_only';
END $$;
CREATE TRIGGER observer_corrections_append_only BEFORE UPDATE ON observer_corrections
    FOR EACH ROW EXECUTE FUNCTION observer_corrections_append_only();

-- 5. An ACCREDITED observer is revoked, never deleted. NOT VALID: observers deleted while
-- accredited before this rule keep their record as it is; any further change must obey it.
ALTER TABLE observers ADD CONSTRAINT observers_accredited_not_deleted
    CHECK (delete_time IS NULL OR accreditation_state <> 'ACCREDITED') NOT VALID;

-- 6. The audit trail keeps the reason of official acts (corrections, rejections, revocations).
ALTER TABLE audit_events ADD COLUMN reason text NOT NULL DEFAULT '';

-- 7. A decided observer is never removed for good, so an election whose observers were
-- decided is never wiped (DeleteElection with force).
CREATE FUNCTION observers_keep_decided() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.accreditation_state <> 'PENDING' THEN
        RAISE EXCEPTION 'observer % of election % was decided (%): it is kept', OLD.id,
            OLD.election_id, OLD.accreditation_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_decided_kept';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER observers_decided_kept BEFORE DELETE ON observers
    FOR EACH ROW EXECUTE FUNCTION observers_keep_decided();
CREATE FUNCTION observers_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'observers are never removed wholesale'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'observers_decided_kept';
END $$;
CREATE TRIGGER observers_no_truncate BEFORE TRUNCATE ON observers
    FOR EACH STATEMENT EXECUTE FUNCTION observers_no_truncate();
