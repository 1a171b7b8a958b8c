#!/bin/sh
# Runs once, when the primary's data directory is initialised (the official
# image runs /docker-entrypoint-initdb.d/*.sh): a role for streaming
# replication, a physical replication slot for the replica, so the primary
# keeps the WAL the replica has not received yet, and a pg_hba.conf line that
# lets the role connect for replication.
set -e

psql -v ON_ERROR_STOP=1 -v pw="${REPLICATION_PASSWORD:?REPLICATION_PASSWORD is not set}" \
	--username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SELECT pg_create_physical_replication_slot('replica_1');
SQL

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
