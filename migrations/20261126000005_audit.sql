-- The audit trail: one event per successful mutation, written in the same transaction as
-- the change (so failed calls leave none), never changed or deleted.

CREATE TABLE audit_events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The election the resource belongs to (an election's own events included); NULL for
    -- organizations, which are listed under `organizations/-`. No foreign key: the trail
    -- outlives what it describes.
    election_id    text,
    event_time     timestamptz NOT NULL DEFAULT now(),
    -- The agency that made the change.
    actor          text        NOT NULL,
    -- The full gRPC method.
    method         text        NOT NULL,
    resource       text        NOT NULL,
    request_id     text        NOT NULL DEFAULT '',
    changed_fields text[]      NOT NULL DEFAULT '{}',
    -- Proto3 JSON of the resource before and after, personal data redacted.
    before         jsonb,
    after          jsonb
);
COMMENT ON TABLE audit_events IS 'Append-only audit trail of successful mutations.';
CREATE INDEX audit_events_by_election ON audit_events (election_id, event_time, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events cannot be changed or deleted'
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
-- Row triggers do not see TRUNCATE.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
