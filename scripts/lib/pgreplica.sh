# shellcheck shell=bash
# A streaming replica of the throw-away PostgreSQL, sourced by scripts/test,
# which defines section, die, is_root, random_port, pg_bindir and pg_bin
# before sourcing this file.
#
#   start_pg_replica   copies the primary named by STRATA_TEST_POSTGRES_URL
#                      with pg_basebackup -R -X stream into a temporary
#                      directory, starts it on a free loopback port, waits
#                      until it accepts connections in recovery, and exports
#                        STRATA_TEST_POSTGRES_REPLICA_URL
#                          postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   stop_pg_replica    stops it (pg_ctl, else by PID) and removes the directory
#
# The primary must accept replication connections from 127.0.0.1 for the
# postgres user: initdb -A trust writes "host replication all 127.0.0.1/32
# trust" into pg_hba.conf, and PostgreSQL 15's defaults (wal_level=replica,
# max_wal_senders=10) need no change.

pg_replica_tmp=""

# pg_replica_as runs a command as the owner of the replica's files, from a
# directory that user can read.
pg_replica_as() {
	if is_root; then
		(cd "$pg_replica_tmp" && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

start_pg_replica() {
	local bin="${pg_bin:-$(pg_bindir)}"
	[ -n "$bin" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
	local primary="${STRATA_TEST_POSTGRES_URL:?}"

	pg_replica_tmp="$(mktemp -d /tmp/strata-test-pgreplica.XXXXXX)"
	if is_root; then
		chown postgres: "$pg_replica_tmp"
	fi
	chmod 700 "$pg_replica_tmp"

	section "starting a PostgreSQL streaming replica"
	if ! pg_replica_as "$bin/pg_basebackup" -d "$primary" -D "$pg_replica_tmp/data" -R -X stream \
		-c fast --no-sync >"$pg_replica_tmp/basebackup.log" 2>&1; then
		cat "$pg_replica_tmp/basebackup.log" >&2
		die "pg_basebackup from the test PostgreSQL failed (does its pg_hba.conf allow replication from 127.0.0.1?)"
	fi
	# The copy has the primary's configuration files but not the options
	# the primary was started with (-o ...); the replica gets its own below.

	# A hot standby refuses to start with fewer of these than its primary.
	local settings
	settings="$("$bin/psql" -XAtq -d "$primary" -c "SELECT string_agg('-c ' || name || '=' || setting, ' ') FROM pg_settings
		WHERE name IN ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')")" ||
		die "cannot read the settings of the test PostgreSQL"

	local port attempt
	for attempt in 1 2 3 4 5; do
		port="$(random_port)"
		if pg_replica_as "$bin/pg_ctl" -D "$pg_replica_tmp/data" -l "$pg_replica_tmp/server.log" -w -t 30 start -o \
			"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$pg_replica_tmp -c fsync=off -c full_page_writes=off -c hot_standby_feedback=on $settings" \
			>/dev/null 2>&1; then
			break
		fi
		if [ "$attempt" = 5 ] || ! grep -q 'could not \(bind\|create lock file\)' "$pg_replica_tmp/server.log" 2>/dev/null; then
			tail -n 20 "$pg_replica_tmp/server.log" >&2 2>/dev/null || true
			die "the PostgreSQL replica did not start"
		fi
		: >"$pg_replica_tmp/server.log"
	done

	local i
	for i in $(seq 1 100); do
		if [ "$("$bin/psql" -XAtq -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; then
			break
		fi
		[ "$i" = 100 ] && die "the PostgreSQL replica on port $port is not ready after 10s"
		sleep 0.1
	done
	export STRATA_TEST_POSTGRES_REPLICA_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "STRATA_TEST_POSTGRES_REPLICA_URL=$STRATA_TEST_POSTGRES_REPLICA_URL"
}

stop_pg_replica() {
	[ -n "$pg_replica_tmp" ] || return 0
	local bin="${pg_bin:-$(pg_bindir)}"
	if [ -f "$pg_replica_tmp/data/postmaster.pid" ]; then
		if ! pg_replica_as "$bin/pg_ctl" -D "$pg_replica_tmp/data" -m immediate -w -t 20 stop >/dev/null 2>&1; then
			local pid
			pid="$(head -n 1 "$pg_replica_tmp/data/postmaster.pid" 2>/dev/null || true)"
			[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -rf "$pg_replica_tmp"
	pg_replica_tmp=""
}
