-- The two PostgreSQL roles ControlPlane uses on an external database (docs/security.md, "Least privilege").
-- Run once as a superuser (or a role with CREATEROLE and CREATEDB):
--   psql -v ON_ERROR_STOP=1 -v owner_password='…' -v app_password='…' -f controlplane-roles.sql
-- Then configure ControlPlane with
--   ConnectionStrings:ControlPlaneMigrations = …;Username=controlplane_owner;Password=<owner_password>   (migrations only)
--   ConnectionStrings:ControlPlane           = …;Username=controlplane_app;Password=<app_password>       (everything else)
-- On every start ControlPlane migrates as the owner and then grants controlplane_app what it needs: read and write on the
-- working tables, INSERT and SELECT only on audit_events and audit_checkpoints. controlplane_app owns nothing, so it can
-- neither ALTER those tables nor disable their append-only triggers.

CREATE ROLE controlplane_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_password';
CREATE ROLE controlplane_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
CREATE DATABASE controlplane OWNER controlplane_owner;

\connect controlplane
-- PostgreSQL 15 and later already refuse CREATE in the public schema to PUBLIC; older versions do not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO controlplane_owner;
