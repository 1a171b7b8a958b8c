# shellcheck shell=bash
# A throw-away Redis for the tests, sourced by scripts/test, which defines
# section, die, port_free and random_port before sourcing this file.
#
#   start_redis   finds redis-server, starts it on a free loopback port with
#                 its files in a temporary directory, waits until it answers
#                 PING, and exports
#                   STRATA_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
#                   STRATA_TEST_REDIS_SERVER  the redis-server binary, for
#                                             tests that start their own
#   stop_redis    kills it by PID and removes the temporary directory
#
# Nothing is installed here: scripts/test installs redis-server with apt-get.

redis_tmp=""
redis_pid=""

# redis_ping reports whether a Redis answers PING on 127.0.0.1:$1.
redis_ping() {
	if command -v redis-cli >/dev/null 2>&1; then
		[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
		return
	fi
	local reply
	# shellcheck disable=SC2094 # one descriptor, read and written in turn
	{
		exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'PING\r\n' >&3 &&
			IFS= read -r -t 1 reply <&3 &&
			exec 3>&-
	} 2>/dev/null || return 1
	[ "${reply%$'\r'}" = "+PONG" ]
}

start_redis() {
	local bin
	bin="$(command -v redis-server 2>/dev/null || true)"
	[ -n "$bin" ] || die "redis-server not found on PATH; install it with: apt-get install -y redis-server"

	redis_tmp="$(mktemp -d /tmp/strata-test-redis.XXXXXX)"
	section "starting Redis ($("$bin" --version | awk '{sub(/^v=/, "", $3); print $3}'))"

	local port attempt i
	for attempt in 1 2 3 4 5; do
		port="$(random_port)"
		"$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
			--dir "$redis_tmp" --logfile "$redis_tmp/redis.log" &
		redis_pid=$!
		for i in $(seq 1 100); do
			if redis_ping "$port"; then
				break 2
			fi
			if ! kill -0 "$redis_pid" 2>/dev/null; then
				break # exited, most likely because the port was taken meanwhile
			fi
			sleep 0.05
		done
		kill -KILL "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
		redis_pid=""
		if [ "$attempt" = 5 ]; then
			tail -n 20 "$redis_tmp/redis.log" >&2 2>/dev/null || true
			die "Redis did not start"
		fi
	done

	export STRATA_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
	export STRATA_TEST_REDIS_SERVER="$bin"
	echo "STRATA_TEST_REDIS_URL=$STRATA_TEST_REDIS_URL"
}

stop_redis() {
	if [ -n "$redis_pid" ]; then
		kill -TERM "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
		redis_pid=""
	fi
	if [ -n "$redis_tmp" ]; then
		rm -rf "$redis_tmp"
		redis_tmp=""
	fi
}
