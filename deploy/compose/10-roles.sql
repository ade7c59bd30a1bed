-- Run once by the postgres image when its volume is first initialized (docker-compose.yml):
-- the runtime role the service serves as. Its rights (DML only; the audit trail and the change
-- feed append-only) come from the migrations, which `observer-registry migrate` runs as the
-- owner. Local trials only: the password is the compose file's.
CREATE ROLE observer_registry_runtime NOLOGIN;
CREATE ROLE registry_app LOGIN PASSWORD 'registry_app' IN ROLE observer_registry_runtime;
