#!/bin/sh
# Run by the postgres image on the first start of an empty volume (/docker-entrypoint-initdb.d).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$CONTROLPLANE_OWNER_PASSWORD" -v app_password="$CONTROLPLANE_APP_PASSWORD" \
  -f /controlplane/controlplane-roles.sql
