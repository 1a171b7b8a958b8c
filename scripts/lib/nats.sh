# shellcheck shell=bash
# A throw-away NATS server with JetStream for the tests, sourced by
# scripts/test, which defines section, die, port_free and random_port
# before sourcing this file.
#
#   start_nats   finds nats-server (on PATH or in $(go env GOPATH)/bin, else
#                installs it with go install), starts it on a free loopback
#                port with JetStream storing in a temporary directory, waits
#                until its monitoring endpoint reports healthy, and exports
#                  STRATA_TEST_NATS_URL     nats://127.0.0.1:PORT
#                  STRATA_TEST_NATS_SERVER  the nats-server binary, for
#                                           tests that start and stop their
#                                           own server
#   stop_nats    kills it by PID and removes the temporary directory

# The version Strata's go.mod embeds; Debian's nats-server (2.9) is too
# old for the JetStream features the broker uses.
nats_version="v2.15.2"
nats_tmp=""
nats_pid=""

# nats_bin prints the path of a nats-server binary, installing it into
# GOPATH/bin when none is found.
nats_bin() {
	local bin gobin
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
	bin="$(command -v nats-server 2>/dev/null || true)"
	if [ -z "$bin" ] && [ -x "$gobin/nats-server" ]; then
		bin="$gobin/nats-server"
	fi
	if [ -z "$bin" ]; then
		section "installing nats-server $nats_version (go install)" >&2
		GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "github.com/nats-io/nats-server/v2@$nats_version" >&2 ||
			die "go install github.com/nats-io/nats-server/v2@$nats_version failed"
		bin="$gobin/nats-server"
	fi
	printf '%s\n' "$bin"
}

# nats_healthy reports whether the monitoring endpoint on 127.0.0.1:$1
# answers /healthz with 200 (JetStream included).
nats_healthy() {
	if command -v curl >/dev/null 2>&1; then
		curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$1/healthz"
		return
	fi
	local status
	# shellcheck disable=SC2094 # one descriptor, written then read
	{
		exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
			IFS= read -r -t 1 status <&3 &&
			exec 3>&-
	} 2>/dev/null || return 1
	case "$status" in
	"HTTP/1."?" 200"*) return 0 ;;
	esac
	return 1
}

start_nats() {
	local bin
	bin="$(nats_bin)"
	[ -x "$bin" ] || die "nats-server not found at $bin"

	nats_tmp="$(mktemp -d /tmp/strata-test-nats.XXXXXX)"
	section "starting NATS ($("$bin" --version))"

	local port mon attempt i
	for attempt in 1 2 3 4 5; do
		port="$(random_port)"
		mon="$(random_port)"
		[ "$mon" != "$port" ] || continue
		rm -rf "$nats_tmp/jetstream"
		"$bin" -a 127.0.0.1 -p "$port" -m "$mon" -js -sd "$nats_tmp" \
			--server_name strata-test -l "$nats_tmp/nats.log" &
		nats_pid=$!
		for i in $(seq 1 200); do
			if nats_healthy "$mon"; then
				break 2
			fi
			if ! kill -0 "$nats_pid" 2>/dev/null; then
				break # exited, most likely because a port was taken meanwhile
			fi
			sleep 0.05
		done
		kill -KILL "$nats_pid" 2>/dev/null || true
		wait "$nats_pid" 2>/dev/null || true
		nats_pid=""
		if [ "$attempt" = 5 ]; then
			tail -n 20 "$nats_tmp/nats.log" >&2 2>/dev/null || true
			die "nats-server did not start"
		fi
	done

	export STRATA_TEST_NATS_URL="nats://127.0.0.1:$port"
	export STRATA_TEST_NATS_SERVER="$bin"
	echo "STRATA_TEST_NATS_URL=$STRATA_TEST_NATS_URL"
}

stop_nats() {
	if [ -n "$nats_pid" ]; then
		kill -TERM "$nats_pid" 2>/dev/null || true
		wait "$nats_pid" 2>/dev/null || true
		nats_pid=""
	fi
	if [ -n "$nats_tmp" ]; then
		rm -rf "$nats_tmp"
		nats_tmp=""
	fi
}
