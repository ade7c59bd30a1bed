-- Headline figures and the public register.
--
-- GetElectionSummary must be fast on a million observers and always agree with
-- ListObservers. Counting observers on every call would scan them all, so the counts are
-- kept in observer_tallies by a trigger in the same transaction as every change: the
-- summary then reads a few hundred rows (organizations x countries x states), and it can
-- never disagree with the observers table.

CREATE TABLE observer_tallies (
    election_id         text   NOT NULL,
    organization_id     text   NOT NULL,
    citizenship         char(2) NOT NULL,
    accreditation_state text   NOT NULL,
    -- Observers not deleted with these values.
    observers           bigint NOT NULL CHECK (observers >= 0),
    PRIMARY KEY (election_id, organization_id, citizenship, accreditation_state)
);
COMMENT ON TABLE observer_tallies IS 'Observers not deleted per (election, organization, citizenship, state); kept by trigger.';

CREATE FUNCTION observers_maintain_tallies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows are upserted in key order, so concurrent writers lock tally rows in the same
    -- order and cannot deadlock on them.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO observer_tallies AS t
        SELECT election_id, organization_id, citizenship, accreditation_state, count(*)
          FROM new_rows WHERE delete_time IS NULL
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (election_id, organization_id, citizenship, accreditation_state)
        DO UPDATE SET observers = t.observers + excluded.observers;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Decrements first, on rows that exist; then increments, in key order.
        UPDATE observer_tallies t SET observers = t.observers + d.n
          FROM (SELECT election_id, organization_id, citizenship, accreditation_state, sum(n) AS n
                  FROM (SELECT election_id, organization_id, citizenship, accreditation_state, 1 AS n
                          FROM new_rows WHERE delete_time IS NULL
                        UNION ALL
                        SELECT election_id, organization_id, citizenship, accreditation_state, -1
                          FROM old_rows WHERE delete_time IS NULL) changes
                 GROUP BY 1, 2, 3, 4 HAVING sum(n) < 0) d
         WHERE t.election_id = d.election_id AND t.organization_id = d.organization_id
           AND t.citizenship = d.citizenship AND t.accreditation_state = d.accreditation_state;
        INSERT INTO observer_tallies AS t
        SELECT election_id, organization_id, citizenship, accreditation_state, sum(n)
          FROM (SELECT election_id, organization_id, citizenship, accreditation_state, 1 AS n
                  FROM new_rows WHERE delete_time IS NULL
                UNION ALL
                SELECT election_id, organization_id, citizenship, accreditation_state, -1
                  FROM old_rows WHERE delete_time IS NULL) changes
         GROUP BY 1, 2, 3, 4 HAVING sum(n) > 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (election_id, organization_id, citizenship, accreditation_state)
        DO UPDATE SET observers = t.observers + excluded.observers;
    ELSE
        UPDATE observer_tallies t SET observers = t.observers - gone.n
          FROM (SELECT election_id, organization_id, citizenship, accreditation_state, count(*) AS n
                  FROM old_rows WHERE delete_time IS NULL GROUP BY 1, 2, 3, 4) gone
         WHERE t.election_id = gone.election_id AND t.organization_id = gone.organization_id
           AND t.citizenship = gone.citizenship AND t.accreditation_state = gone.accreditation_state;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER observers_tallies_after_insert AFTER INSERT ON observers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_tallies();
CREATE TRIGGER observers_tallies_after_update AFTER UPDATE ON observers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_tallies();
CREATE TRIGGER observers_tallies_after_delete AFTER DELETE ON observers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observers_maintain_tallies();

-- Observers registered before this migration.
INSERT INTO observer_tallies
SELECT election_id, organization_id, citizenship, accreditation_state, count(*)
  FROM observers WHERE delete_time IS NULL GROUP BY 1, 2, 3, 4;

-- The public register: accredited observers by family name, then given name.
CREATE INDEX observers_public_register ON observers (election_id, family_name, given_name, id)
    WHERE accreditation_state = 'ACCREDITED' AND delete_time IS NULL;
