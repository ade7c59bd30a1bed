-- AIP-155: a request_id is unique per client. Keyed by the request_id alone, another agency
-- that happened to send the same id was answered with the first agency's resource (which it
-- might not even be allowed to see), or was refused, or waited on the first one's lock.
-- Keyed by (agency, request_id), each agency has its own ids.

ALTER TABLE request_ids ADD COLUMN agency text;

-- Existing keys belong to the agency that made the create: every create that carried a
-- request_id wrote an audit event with the same id and method in the same transaction, and
-- the trail is never purged. The audit keeps the id as the client wrote it (upper case,
-- braces, `urn:uuid:` or no hyphens all parse), so both sides are compared as 32 hex digits.
-- The latest event wins: an id forgotten after its retention may have been reused since.
UPDATE request_ids AS r
   SET agency = a.actor
  FROM (
    SELECT DISTINCT ON (hex, method) hex, method, actor
      FROM (SELECT lower(regexp_replace(request_id, '^urn:uuid:|[{}-]', '', 'gi')) AS hex,
                   method, actor, id
              FROM audit_events
             WHERE request_id <> '') AS e
     ORDER BY hex, method, id DESC
  ) AS a
 WHERE a.hex = replace(r.request_id::text, '-', '')
   AND a.method = r.method;

-- A key with no event (none is expected) belongs to no agency: agency names are never
-- empty, so no caller replays it, and it is purged with the others after the retention.
UPDATE request_ids SET agency = '' WHERE agency IS NULL;

ALTER TABLE request_ids
    ALTER COLUMN agency SET NOT NULL,
    DROP CONSTRAINT request_ids_pkey,
    ADD CONSTRAINT request_ids_pkey PRIMARY KEY (agency, request_id);
COMMENT ON COLUMN request_ids.agency IS 'The calling agency: a request_id is unique per agency (AIP-155: per client).';
