#!/bin/bash
# Run once by the postgres image when it initialises an empty data directory (docker-entrypoint-initdb.d):
# the schema owner (migrations; CREATEROLE because a migration creates the audit ledger's append-only role) and one
# login role per service. Until `povguard db provision` grants each role only its own schema, the service roles are
# members of the owner.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE povguard_owner LOGIN CREATEROLE PASSWORD '${MIGRATION_DB_PASSWORD}';
ALTER DATABASE "${POSTGRES_DB}" OWNER TO povguard_owner;
ALTER SCHEMA public OWNER TO povguard_owner;
CREATE ROLE povguard_intake LOGIN PASSWORD '${INTAKE_DB_PASSWORD}' IN ROLE povguard_owner;
CREATE ROLE povguard_assessment LOGIN PASSWORD '${ASSESSMENT_DB_PASSWORD}' IN ROLE povguard_owner;
CREATE ROLE povguard_review LOGIN PASSWORD '${REVIEW_DB_PASSWORD}' IN ROLE povguard_owner;
CREATE ROLE povguard_support LOGIN PASSWORD '${SUPPORT_DB_PASSWORD}' IN ROLE povguard_owner;
CREATE ROLE povguard_audit LOGIN PASSWORD '${AUDIT_DB_PASSWORD}' IN ROLE povguard_owner;
SQL
