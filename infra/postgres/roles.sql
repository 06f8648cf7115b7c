-- Database roles for the production shape (run once per cluster as a superuser, e.g.
--   psql -v ON_ERROR_STOP=1 -f infra/postgres/roles.sql).
-- portal_owner  owns the tables; migrations run as it (PORTAL_MIGRATION_DATABASE_URL).
-- portal_app    the web and worker login (PORTAL_DATABASE_URL): owns nothing, so RLS applies (FORCE too).
-- portal_system NOLOGIN, BYPASSRLS: the app switches to it with SET LOCAL ROLE only for the explicit,
--               logged system scope (jobs, seeding). BYPASSRLS is never inherited, so portal_app itself
--               stays bound by the policies.
-- portal_rw     NOLOGIN group that receives the table grants (migrations grant to it).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_rw') THEN
    CREATE ROLE portal_rw NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_owner') THEN
    CREATE ROLE portal_owner LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_system') THEN
    CREATE ROLE portal_system NOLOGIN NOSUPERUSER BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_app') THEN
    CREATE ROLE portal_app LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$;
GRANT portal_rw TO portal_system;
GRANT portal_rw TO portal_app;
GRANT portal_system TO portal_app;
