-- Foundation: elections, organizations, request-id idempotency and the page-token key.
-- Every rule the application checks for a friendly error is also guaranteed here, so that
-- concurrent callers cannot break it.

-- An election scopes everything about observation (BRIEF: "Everything ... is scoped to one
-- election"). Elections are hard-deleted; children are refused or cascaded (force).
CREATE TABLE elections (
    id                     text        PRIMARY KEY
        -- AIP-122/133 resource id, or a server-generated UUID.
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    display_name           text        NOT NULL CHECK (btrim(display_name) <> ''),
    -- ISO 3166-1 alpha-2; the application validates against the real list.
    host_country           char(2)     NOT NULL CHECK (host_country ~ '^[A-Z]{2}$'),
    voting_day             date        NOT NULL,
    -- NULL: accreditation closes at the start of voting day, UTC.
    accreditation_deadline timestamptz,
    description            text        NOT NULL DEFAULT '',
    create_time            timestamptz NOT NULL DEFAULT now(),
    update_time            timestamptz NOT NULL DEFAULT now(),
    -- Opaque, replaced on every update (AIP-154).
    etag                   uuid        NOT NULL DEFAULT gen_random_uuid()
);
COMMENT ON TABLE elections IS 'One election: host country, voting day, accreditation deadline.';
-- Default list order is (create_time, id); keyset paging walks this index.
CREATE INDEX elections_create_time_id ON elections (create_time, id);

-- Sending bodies, shared by all elections.
CREATE TABLE organizations (
    id           text        PRIMARY KEY
        CHECK (id ~ '^([a-z]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'),
    display_name text        NOT NULL CHECK (btrim(display_name) <> ''),
    abbreviation text        NOT NULL DEFAULT '',
    kind         text        NOT NULL CHECK (kind IN ('INTERNATIONAL_ORGANIZATION', 'PARLIAMENTARY_ASSEMBLY',
                                                      'FOREIGN_ELECTION_BODY', 'FOREIGN_GOVERNMENT',
                                                      'NON_GOVERNMENTAL_ORGANIZATION')),
    country      char(2)     CHECK (country ~ '^[A-Z]{2}$'),
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    etag         uuid        NOT NULL DEFAULT gen_random_uuid(),
    -- A foreign election body or government belongs to a country; other kinds do not.
    CONSTRAINT organizations_country_matches_kind CHECK (
        (kind IN ('FOREIGN_ELECTION_BODY', 'FOREIGN_GOVERNMENT')) = (country IS NOT NULL))
);
COMMENT ON TABLE organizations IS 'Sending bodies (international organizations, assemblies, foreign commissions...).';
CREATE INDEX organizations_create_time_id ON organizations (create_time, id);

-- AIP-155: a create repeated with the same request_id returns the first response. The row is
-- inserted in the same transaction as the resource, so a concurrent replay waits on the
-- primary key and then reads the committed response instead of creating a second resource.
CREATE TABLE request_ids (
    request_id  uuid        PRIMARY KEY,
    -- Full gRPC method and a hash of the request: a request_id reused for a different
    -- request is refused rather than answered with an unrelated response.
    method      text        NOT NULL,
    fingerprint bytea       NOT NULL,
    -- The encoded response message of the first call.
    response    bytea       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE request_ids IS 'Idempotency keys of create requests (AIP-155), purged after the retention period.';
CREATE INDEX request_ids_create_time ON request_ids (create_time);

-- Key that signs page tokens, shared by every replica and kept across restarts so that a
-- token stays valid while its query does. Generated once, here.
CREATE TABLE server_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) >= 32)
);
INSERT INTO server_secrets (name, value)
VALUES ('page_token_key',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
