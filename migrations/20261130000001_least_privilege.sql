-- Least privilege. `observer-registry migrate` runs every migration, so every table, function
-- and trigger is owned by the role that migrates (the owner). The service can run as a
-- runtime role instead (`serve --no-migrate`): a LOGIN member of the group role
-- `observer_registry_runtime` below, which may change data but not the schema, and may only
-- add to the official record's append-only tables. As it owns nothing, it cannot drop or
-- disable their triggers either. The operator creates the LOGIN role (README, "Roles"):
--   CREATE ROLE registry_app LOGIN PASSWORD '…' IN ROLE observer_registry_runtime;

-- Roles belong to the cluster, not to a database, and several databases of one cluster are
-- migrated at once (replicas, tests): created only when missing, and another migration that
-- creates it at the same moment is fine.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'observer_registry_runtime') THEN
        BEGIN
            CREATE ROLE observer_registry_runtime NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
                NOREPLICATION NOBYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role observer_registry_runtime does not exist, and % may not create it', current_user
                    USING HINT = 'CREATE ROLE observer_registry_runtime NOLOGIN; as a role with CREATEROLE, then migrate again';
        END;
    END IF;
END $$;

-- Nobody but the owner creates objects in the schema (already so on PostgreSQL 15 and later;
-- older clusters let every role create tables in `public`). Only its owner may revoke it.
DO $$
BEGIN
    IF pg_has_role((SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'USAGE') THEN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    END IF;
END $$;

-- Not even temporary tables: PUBLIC may create them in every new database. The migrating
-- role keeps them (migrations use pg_temp functions). Only the database's owner may say so.
DO $$
BEGIN
    IF pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO observer_registry_runtime;

-- Data: read and write every table…
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO observer_registry_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO observer_registry_runtime;
-- …except the append-only ones: the audit trail, the change feed and the corrections of the
-- official record only grow. The change feed gets its positions at commit and is purged past
-- its retention by the two functions below, which run as the owner.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, changes, observer_corrections
    FROM observer_registry_runtime;
-- The service reads which migrations have run (`serve --no-migrate` refuses a database that
-- lacks some), and changes none.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM observer_registry_runtime;
GRANT SELECT ON _sqlx_migrations TO observer_registry_runtime;

-- Tables and sequences of later migrations get the same DML. A later append-only table must
-- revoke UPDATE and DELETE from the runtime role itself, as above.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO observer_registry_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO observer_registry_runtime;

-- Positions are given at commit by UPDATE on `changes`, which the runtime role may not do: the
-- trigger function runs as its owner. A fixed search_path, so that no object of another
-- schema stands in for the tables it names.
ALTER FUNCTION changes_take_positions() SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION changes_take_positions() FROM PUBLIC;

-- Purging the change feed past its retention is the one deletion from it; it runs as the
-- owner, and never takes a change younger than a day, whatever the caller asks: a runtime
-- role cannot empty the feed through it.
CREATE FUNCTION purge_changes(retention interval) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH purged AS (
        DELETE FROM changes
         WHERE change_time < now() - greatest(retention, interval '1 day')
        RETURNING 1
    )
    SELECT count(*) FROM purged
$$;
COMMENT ON FUNCTION purge_changes(interval) IS
    'Deletes changes older than the retention (at least a day); the only deletion from the change feed.';
REVOKE EXECUTE ON FUNCTION purge_changes(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_changes(interval) TO observer_registry_runtime;
