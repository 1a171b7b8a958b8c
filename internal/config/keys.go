package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
)

const sourceDefault = "default"

// key describes one configuration key. The flag name is the key name in
// kebab case; the value's type follows from what ptr points at.
type key struct {
	name      string                 // TOML key, e.g. "log_level"
	env       string                 // environment variable, e.g. "STRATA_LOG_LEVEL"
	usage     string                 // flag help, without the env var
	ptr       func(c *Config) any    // the field: *string, *time.Duration, *int64, *int or *bool
	check     func(c *Config) string // "" when valid, else what is allowed
	secretURL bool                   // a URL whose password is never shown
}

func (k key) flag() string { return strings.ReplaceAll(k.name, "_", "-") }

// keys lists every configuration key, in the order they are shown.
var keys = []key{
	{
		name: "http", env: "STRATA_HTTP",
		usage: "`host:port` to listen on",
		ptr:   func(c *Config) any { return &c.HTTP },
		check: func(c *Config) string { return checkHostPort(c.HTTP) },
	},
	{
		name: "dir", env: "STRATA_DIR",
		usage: "data `directory`",
		ptr:   func(c *Config) any { return &c.Dir },
		check: func(c *Config) string {
			if c.Dir == "" {
				return "is empty; a directory path is required"
			}
			return ""
		},
	},
	{
		name: "db", env: "STRATA_DB_URL",
		usage:     "database `URL`: \"\" for SQLite in the data directory, a postgres:// URL, or sqlite:PATH",
		ptr:       func(c *Config) any { return &c.DB },
		check:     func(c *Config) string { return checkDB(c.DB) },
		secretURL: true,
	},
	{
		name: "db_replicas", env: "STRATA_DB_REPLICAS",
		usage: "read replicas of a PostgreSQL db, comma-separated postgres:// `URLs`: reads go to them round robin, " +
			"writes, and a client's reads of its own writes until a replica has them, to the primary",
		ptr:       func(c *Config) any { return &c.DBReplicas },
		check:     checkDBReplicas,
		secretURL: true,
	},
	{
		name: "replica_max_lag", env: "STRATA_REPLICA_MAX_LAG",
		usage: "how far behind the primary a read replica may fall, a `duration`; one further behind gets no reads until it catches up",
		ptr:   func(c *Config) any { return &c.ReplicaMaxLag },
		check: func(c *Config) string { return checkPositiveDuration(c.ReplicaMaxLag) },
	},
	{
		name: "log_level", env: "STRATA_LOG_LEVEL",
		usage: "log `level`: debug, info, warn or error",
		ptr:   func(c *Config) any { return &c.LogLevel },
		check: func(c *Config) string { return checkOneOf(c.LogLevel, "debug", "info", "warn", "error") },
	},
	{
		name: "log_format", env: "STRATA_LOG_FORMAT",
		usage: "log `format`: text, json, or auto (text on a terminal, else json)",
		ptr:   func(c *Config) any { return &c.LogFormat },
		check: func(c *Config) string { return checkOneOf(c.LogFormat, "auto", "text", "json") },
	},
	{
		name: "metrics", env: "STRATA_METRICS",
		usage: "serve Prometheus metrics at /metrics",
		ptr:   func(c *Config) any { return &c.Metrics },
	},
	{
		name: "metrics_http", env: "STRATA_METRICS_HTTP",
		usage: "`host:port` to serve /metrics on, apart from the API (\"\": on the API's address)",
		ptr:   func(c *Config) any { return &c.MetricsHTTP },
		check: func(c *Config) string {
			if c.MetricsHTTP == "" {
				return ""
			}
			return checkHostPort(c.MetricsHTTP)
		},
	},
	{
		name: "pprof_http", env: "STRATA_PPROF_HTTP",
		usage: "`host:port` to serve Go's profiles on, at /debug/pprof/ (\"\": off); keep it private",
		ptr:   func(c *Config) any { return &c.PprofHTTP },
		check: func(c *Config) string {
			if c.PprofHTTP == "" {
				return ""
			}
			return checkHostPort(c.PprofHTTP)
		},
	},
	{
		name: "drain_delay", env: "STRATA_DRAIN_DELAY",
		usage: "at shutdown, how long /readyz fails before the listener closes, so load balancers stop sending traffic first, a `duration`",
		ptr:   func(c *Config) any { return &c.DrainDelay },
		check: func(c *Config) string {
			if c.DrainDelay < 0 {
				return "is negative"
			}
			return ""
		},
	},
	{
		name: "roles", env: "STRATA_ROLES",
		usage: "what this node does, comma-separated `roles`: api (the HTTP API, realtime and the event relay), " +
			"worker (runs background jobs and schedules), or gateway alone (a proxy in front of api nodes; no database)",
		ptr: func(c *Config) any { return &c.Roles },
		check: func(c *Config) string {
			if p := checkRoles(c.Roles); p != "" {
				return p
			}
			if c.HasRole("gateway") && strings.TrimSpace(c.GatewayUpstreams) == "" && c.GatewayDiscoverDNS == "" {
				return "includes gateway but neither gateway_upstreams nor gateway_discover_dns is set"
			}
			return ""
		},
	},
	{
		name: "job_workers", env: "STRATA_JOB_WORKERS",
		usage: "jobs a worker node runs at once, a `number` from 1 to 1000",
		ptr:   func(c *Config) any { return &c.JobWorkers },
		check: func(c *Config) string { return checkRange(c.JobWorkers, 1, 1000) },
	},
	{
		name: "job_queues", env: "STRATA_JOB_QUEUES",
		usage: "the queues a worker node works, `name=workers` entries separated by commas (\"default=4, emails=2, reports=1\"); " +
			"the default queue has job_workers unless named here, and default=0 leaves it out",
		ptr:   func(c *Config) any { return &c.JobQueues },
		check: checkJobQueues,
	},
	{
		name: "cron", env: "STRATA_CRON",
		usage: "schedules that enqueue jobs of registered kinds, `entries` \"name: spec kind\" separated by ; or new lines " +
			"(\"nightly-report: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run\"); a spec is a cron expression in UTC, " +
			"a macro such as @daily, or @every DURATION",
		ptr:   func(c *Config) any { return &c.Cron },
		check: checkCron,
	},
	{
		name: "gateway_upstreams", env: "STRATA_GATEWAY_UPSTREAMS",
		usage: "the api nodes a gateway sends requests to, comma-separated `URLs`, each optionally followed by weight=N " +
			"(\"http://10.0.0.7:8090, http://10.0.0.8:8090 weight=2\")",
		ptr: func(c *Config) any { return &c.GatewayUpstreams },
	},
	{
		name: "gateway_discover_dns", env: "STRATA_GATEWAY_DISCOVER_DNS",
		usage: "a DNS `name` whose addresses are the api nodes (a headless Kubernetes service), looked up again every 10s",
		ptr:   func(c *Config) any { return &c.GatewayDiscoverDNS },
	},
	{
		name: "gateway_discover_port", env: "STRATA_GATEWAY_DISCOVER_PORT",
		usage: "the `port` of the api nodes found by gateway_discover_dns",
		ptr:   func(c *Config) any { return &c.GatewayDiscoverPort },
		check: func(c *Config) string { return checkRange(c.GatewayDiscoverPort, 1, 65535) },
	},
	{
		name: "gateway_policy", env: "STRATA_GATEWAY_POLICY",
		usage: "how a gateway picks an api node, a `policy`: round_robin, least_conn, weighted or p2c " +
			"(the faster of two random healthy nodes)",
		ptr: func(c *Config) any { return &c.GatewayPolicy },
		check: func(c *Config) string {
			return checkOneOf(c.GatewayPolicy, "round_robin", "least_conn", "weighted", "p2c")
		},
	},
	{
		name: "tls_cert", env: "STRATA_TLS_CERT",
		usage: "certificate `file` (PEM) a gateway serves HTTPS and HTTP/2 with, reloaded when it changes; needs tls_key",
		ptr:   func(c *Config) any { return &c.TLSCert },
		check: func(c *Config) string { return checkPair(c.TLSCert, c.TLSKey, "tls_key") },
	},
	{
		name: "tls_key", env: "STRATA_TLS_KEY",
		usage: "private key `file` (PEM) of tls_cert",
		ptr:   func(c *Config) any { return &c.TLSKey },
		check: func(c *Config) string { return checkPair(c.TLSKey, c.TLSCert, "tls_cert") },
	},
	{
		name: "http_redirect", env: "STRATA_HTTP_REDIRECT",
		usage: "`host:port` where a gateway with tls_cert redirects plain HTTP to HTTPS (\"\": none)",
		ptr:   func(c *Config) any { return &c.HTTPRedirect },
		check: func(c *Config) string {
			if c.HTTPRedirect == "" {
				return ""
			}
			if c.TLSCert == "" {
				return "needs tls_cert"
			}
			return checkHostPort(c.HTTPRedirect)
		},
	},
	{
		name: "webhook_allow_hosts", env: "STRATA_WEBHOOK_ALLOW_HOSTS",
		usage: "hosts, IP addresses or `CIDRs` webhooks may call although they are private, loopback or link-local, " +
			"comma-separated (\"\": webhooks reach public addresses only)",
		ptr: func(c *Config) any { return &c.WebhookAllowHosts },
	},
	{
		name: "webhook_timeout", env: "STRATA_WEBHOOK_TIMEOUT",
		usage: "how long one webhook delivery may take, a `duration`",
		ptr:   func(c *Config) any { return &c.WebhookTimeout },
		check: func(c *Config) string { return checkPositiveDuration(c.WebhookTimeout) },
	},
	{
		name: "webhook_disable_after", env: "STRATA_WEBHOOK_DISABLE_AFTER",
		usage: "failed deliveries in a row after which a webhook endpoint is disabled, a `number` from 1 to 10000",
		ptr:   func(c *Config) any { return &c.WebhookDisableAfter },
		check: func(c *Config) string { return checkRange(c.WebhookDisableAfter, 1, 10000) },
	},
	{
		name: "nats_url", env: "STRATA_NATS_URL",
		usage:     "NATS servers with JetStream, comma-separated `URLs` (\"\": run an embedded NATS server in the data directory)",
		ptr:       func(c *Config) any { return &c.NATSURL },
		check:     func(c *Config) string { return checkNATS(c.NATSURL) },
		secretURL: true,
	},
	{
		name: "nats_listen", env: "STRATA_NATS_LISTEN",
		usage: "`host:port` where the embedded NATS server also accepts clients (\"\": this process only)",
		ptr:   func(c *Config) any { return &c.NATSListen },
		check: func(c *Config) string {
			if c.NATSListen == "" {
				return ""
			}
			if c.NATSURL != "" {
				return "applies only to the embedded server; nats_url is set"
			}
			return checkHostPort(c.NATSListen)
		},
	},
	{
		name: "event_retention", env: "STRATA_EVENT_RETENTION",
		usage: "how long events stay in the broker for replay, a `duration`",
		ptr:   func(c *Config) any { return &c.EventRetention },
		check: func(c *Config) string { return checkPositiveDuration(c.EventRetention) },
	},
	{
		name: "shutdown_timeout", env: "STRATA_SHUTDOWN_TIMEOUT",
		usage: "how long shutdown waits for in-flight work, a `duration`",
		ptr:   func(c *Config) any { return &c.ShutdownTimeout },
		check: func(c *Config) string { return checkPositiveDuration(c.ShutdownTimeout) },
	},
	{
		name: "max_body_bytes", env: "STRATA_MAX_BODY_BYTES",
		usage: "largest request body accepted, in `bytes`",
		ptr:   func(c *Config) any { return &c.MaxBodyBytes },
		check: func(c *Config) string {
			if c.MaxBodyBytes <= 0 {
				return "is not greater than 0"
			}
			return ""
		},
	},
	{
		name: "idempotency_ttl", env: "STRATA_IDEMPOTENCY_TTL",
		usage: "how long idempotency keys are remembered, a `duration`",
		ptr:   func(c *Config) any { return &c.IdempotencyTTL },
		check: func(c *Config) string { return checkPositiveDuration(c.IdempotencyTTL) },
	},
	{
		name: "token_ttl", env: "STRATA_TOKEN_TTL",
		usage: "lifetime of superuser access tokens, a `duration`",
		ptr:   func(c *Config) any { return &c.TokenTTL },
		check: func(c *Config) string { return checkPositiveDuration(c.TokenTTL) },
	},
	{
		name: "migrations_dir", env: "STRATA_MIGRATIONS_DIR",
		usage: "`directory` of migration files (\"\" means DIR/migrations)",
		ptr:   func(c *Config) any { return &c.MigrationsDir },
	},
	{
		name: "automigrate", env: "STRATA_AUTOMIGRATE",
		usage: "apply pending migration files at start",
		ptr:   func(c *Config) any { return &c.Automigrate },
	},
	{
		name: "sqlite_readers", env: "STRATA_SQLITE_READERS",
		usage: "SQLite read connections, a `number` from 1 to 64",
		ptr:   func(c *Config) any { return &c.SQLiteReaders },
		check: func(c *Config) string { return checkRange(c.SQLiteReaders, 1, 64) },
	},
	{
		name: "sqlite_mmap_size", env: "STRATA_SQLITE_MMAP_SIZE",
		usage: "how much of the SQLite file is read through memory mapping instead of read calls, a `size` such as 256MiB " +
			"(SQLite caps it just under 2GiB); 0, the default, maps nothing. Mapping speeds up reads of a file that rarely " +
			"changes, but after every commit each reader maps the file again",
		ptr:   func(c *Config) any { return &c.SQLiteMmapSize },
		check: func(c *Config) string { return checkMmapSize(c.SQLiteMmapSize) },
	},
	{
		name: "postgres_max_conns", env: "STRATA_POSTGRES_MAX_CONNS",
		usage: "PostgreSQL pool size, a `number` from 0 to 1000 (0 means the driver's default)",
		ptr:   func(c *Config) any { return &c.PostgresMaxConns },
		check: func(c *Config) string { return checkRange(c.PostgresMaxConns, 0, 1000) },
	},
	{
		name: "password_min_length", env: "STRATA_PASSWORD_MIN_LENGTH",
		usage: "shortest password users may choose, a `number` of characters from 8 to 128",
		ptr:   func(c *Config) any { return &c.PasswordMinLength },
		check: func(c *Config) string { return checkRange(c.PasswordMinLength, 8, 128) },
	},
	{
		name: "password_blocklist", env: "STRATA_PASSWORD_BLOCKLIST",
		usage: "`file` of passwords users may not choose, one per line (such as a list of breached passwords)",
		ptr:   func(c *Config) any { return &c.PasswordBlocklist },
		check: func(c *Config) string {
			if c.PasswordBlocklist == "" {
				return ""
			}
			if _, err := os.Stat(c.PasswordBlocklist); err != nil {
				return "cannot be read: " + err.Error()
			}
			return ""
		},
	},
	{
		name: "smtp_url", env: "STRATA_SMTP_URL",
		usage:     "mail relay for password reset and verification emails, an smtp://[user:pass@]host:port `URL` (\"\": no email)",
		ptr:       func(c *Config) any { return &c.SMTPURL },
		check:     func(c *Config) string { return checkSMTP(c.SMTPURL) },
		secretURL: true,
	},
	{
		name: "mail_from", env: "STRATA_MAIL_FROM",
		usage: "sender `address` of the emails Strata sends",
		ptr:   func(c *Config) any { return &c.MailFrom },
		check: func(c *Config) string {
			if c.SMTPURL != "" && !strings.Contains(c.MailFrom, "@") {
				return "must be an email address when smtp_url is set"
			}
			return ""
		},
	},
	{
		name: "redis_url", env: "STRATA_REDIS_URL",
		usage: "Redis that keeps the rate-limit state and the cache (see cache) shared by every node, a redis://[user:pass@]host:port[/db] " +
			"or rediss:// (TLS) `URL` (\"\": in-process state, per node)",
		ptr:       func(c *Config) any { return &c.RedisURL },
		check:     func(c *Config) string { return checkRedis(c.RedisURL) },
		secretURL: true,
	},
	{
		name: "rate_limit", env: "STRATA_RATE_LIMIT",
		usage: "requests each anonymous client (by IP address; IPv6 by /64) may make to the API, a `limit` " +
			"such as \"100/min burst 20\": a rate per s, min, h or d (or per 10s, 5min ...), and how many may come at once; \"off\": no limit",
		ptr:   func(c *Config) any { return &c.RateLimit },
		check: func(c *Config) string { return checkLimit(c.RateLimit) },
	},
	{
		name: "rate_limit_user", env: "STRATA_RATE_LIMIT_USER",
		usage: "requests each signed-in user or API key may make to the API, a `limit` such as \"100/min burst 20\" (\"off\": no limit)",
		ptr:   func(c *Config) any { return &c.RateLimitUser },
		check: func(c *Config) string { return checkLimit(c.RateLimitUser) },
	},
	{
		name: "rate_limit_auth", env: "STRATA_RATE_LIMIT_AUTH",
		usage: "requests each client IP address may make to the sign-in, sign-up, token refresh, password reset, " +
			"email verification and MFA routes together, instead of the API's limits, a `limit` such as \"100/min burst 20\" (\"off\": no limit)",
		ptr:   func(c *Config) any { return &c.RateLimitAuth },
		check: func(c *Config) string { return checkLimit(c.RateLimitAuth) },
	},
	{
		name: "rate_limit_fail", env: "STRATA_RATE_LIMIT_FAIL",
		usage: "what happens to requests while redis_url cannot be reached, a `policy`: open (let them through) " +
			"or closed (refuse them with 503 Service Unavailable, and fail /readyz)",
		ptr:   func(c *Config) any { return &c.RateLimitFail },
		check: func(c *Config) string { return checkOneOf(c.RateLimitFail, "open", "closed") },
	},
	{
		name: "trusted_proxies", env: "STRATA_TRUSTED_PROXIES",
		usage: "reverse proxies and load balancers whose Forwarded and X-Forwarded-For headers name the client, " +
			"comma-separated IP addresses or `CIDRs` such as \"10.0.0.0/8, 192.0.2.7\" (\"\": none; the socket peer is the client)",
		ptr: func(c *Config) any { return &c.TrustedProxies },
		check: func(c *Config) string {
			if _, err := parseProxies(c.TrustedProxies); err != nil {
				return err.Error()
			}
			return ""
		},
	},
	{
		name: "cache", env: "STRATA_CACHE",
		usage: "where collections with a cache policy keep their cached records, a `backend`: memory (in this process), " +
			"redis (in redis_url, shared by every node: a change on one node is seen by the next read on any), " +
			"auto (redis when redis_url is set, else memory) or off (every read goes to the database)",
		ptr: func(c *Config) any { return &c.Cache },
		check: func(c *Config) string {
			if p := checkOneOf(c.Cache, "auto", "memory", "redis", "off"); p != "" {
				return p
			}
			if c.Cache == "redis" && c.RedisURL == "" {
				return "needs redis_url"
			}
			return ""
		},
	},
	{
		name: "cache_size", env: "STRATA_CACHE_SIZE",
		usage: "memory the in-process cache may hold, a `size` such as 64MiB or 1GB (B, kB, MB, GB, KiB, MiB, GiB), from 1MiB to 1TiB",
		ptr:   func(c *Config) any { return &c.CacheSize },
		check: func(c *Config) string { return checkCacheSize(c.CacheSize) },
	},
	{
		name: "cache_flush_interval", env: "STRATA_CACHE_FLUSH_INTERVAL",
		usage: "how often the increments of write-back counters are written to the database, a `duration`; " +
			"a node that crashes loses the increments it took since its last write, at most this long's worth",
		ptr: func(c *Config) any { return &c.CacheFlushInterval },
		check: func(c *Config) string {
			if c.CacheFlushInterval < 10*time.Millisecond || c.CacheFlushInterval > time.Hour {
				return "is not between 10ms and 1h"
			}
			return ""
		},
	},
}

func checkRedis(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL: " + urlProblem(err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return "is not a redis:// or rediss:// URL, such as redis://localhost:6379/0"
	}
	if u.Hostname() == "" {
		return "has no host; write redis://[USER:PASSWORD@]HOST:PORT[/DB]"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has a port that is not a number from 1 to 65535"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || strings.HasPrefix(db, "+") {
			return "has a database that is not a number; write redis://HOST:PORT/DB with DB such as 0"
		}
	}
	return ""
}

func checkLimit(s string) string {
	if s == "off" {
		return ""
	}
	if _, err := ratelimit.ParseLimit(s); err != nil {
		// The error repeats the value; keep what follows it.
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, strconv.Quote(s)+": "); ok {
			msg = after
		}
		return `is not "off" or a limit such as "100/min burst 20": ` + msg
	}
	return ""
}

// parseProxies parses a comma-separated list of IP addresses and CIDRs.
// Addresses become single-address prefixes; IPv4-mapped IPv6 ones become
// IPv4, as ratelimit.ClientIP sees them.
func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("has %q, which is not an IP address or a CIDR such as 10.0.0.0/8", part)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("has %q, which is not an IP address or a CIDR such as 10.0.0.0/8", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func checkNATS(s string) string {
	if s == "" {
		return ""
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, "://") {
			part = "nats://" + part
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" {
			return "is not a comma-separated list of nats://host:port URLs"
		}
	}
	return ""
}

func checkSMTP(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" || u.Port() == "" {
		return "is not an smtp://[user:pass@]host:port URL"
	}
	return ""
}

// The config file is named by --config, else STRATA_CONFIG, else
// ./strata.toml when it exists.
const (
	configFlag  = "config"
	configEnv   = "STRATA_CONFIG"
	defaultFile = "strata.toml"
)

// ignoredEnv are STRATA_* variables that are not configuration and are
// accepted without complaint: those read by the test script and tests.
// scriptEnv are variables of the project's own scripts (scripts/test,
// scripts/bench, bench/), which may be set around a strata process.
var scriptEnv = map[string]bool{
	"STRATA_FUZZTIME": true, "STRATA_SKIP_FUZZ": true, "STRATA_RACE": true, "STRATA_SKIP_BENCH": true,
	"STRATA_BENCH_SHORT": true, "STRATA_BENCH_COUNT": true, "STRATA_BENCHTIME": true,
}

func ignoredEnv(name string) bool {
	return strings.HasPrefix(name, "STRATA_TEST_") || scriptEnv[name]
}

func keyByName(name string) (key, bool) {
	for _, k := range keys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func keyNames() string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

func envNames() string {
	names := []string{configEnv}
	for _, k := range keys {
		names = append(names, k.env)
	}
	return strings.Join(names, ", ")
}

// set parses s into the field of k in c. On failure it returns what is
// allowed, to be put after the value in the error.
func set(c *Config, k key, s string) (problem string) {
	switch p := k.ptr(c).(type) {
	case *string:
		*p = s
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return "is not a duration such as 10s, 1m30s or 24h"
		}
		*p = d
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "is not an integer"
		}
		*p = n
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return "is not an integer"
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return "is not true or false"
		}
		*p = b
	default:
		panic(fmt.Sprintf("config: key %s has unsupported type %T", k.name, p))
	}
	return ""
}

// fromTOML converts a value decoded from TOML into the text set parses,
// checking its TOML type first: strings and durations are quoted strings,
// integers are integers, booleans are true or false.
func fromTOML(c *Config, k key, v any) (text, problem string) {
	switch k.ptr(c).(type) {
	case *string:
		if s, ok := v.(string); ok {
			return s, ""
		}
		return "", "is not a string"
	case *time.Duration:
		if s, ok := v.(string); ok {
			return s, ""
		}
		return "", `is not a duration string such as "10s" or "1m30s"`
	case *int64, *int:
		if n, ok := v.(int64); ok {
			return strconv.FormatInt(n, 10), ""
		}
		return "", "is not an integer"
	case *bool:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), ""
		}
		return "", "is not true or false"
	}
	return "", "has an unsupported type"
}

// format returns the text form of a field, as a flag default or a value in
// an error.
func format(p any) string {
	switch p := p.(type) {
	case *string:
		return *p
	case *time.Duration:
		return formatDuration(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	}
	return fmt.Sprint(p)
}

// showValue returns a value as it appears in an error: strings quoted,
// numbers, booleans and durations bare, URL passwords hidden.
func showValue(k key, text string) string {
	if _, ok := k.ptr(&Config{}).(*string); ok {
		if k.secretURL {
			text = RedactURL(text)
		}
		return strconv.Quote(text)
	}
	return text
}

// showRaw returns a value as written by the user (env, flag, TOML string) for
// an error about a value that did not parse.
func showRaw(k key, text string) string {
	if k.secretURL {
		text = RedactURL(text)
	}
	return strconv.Quote(text)
}

// showTOML returns a decoded TOML value for an error.
func showTOML(k key, v any) string {
	switch v := v.(type) {
	case string:
		return showRaw(k, v)
	case map[string]any:
		return "(a table)"
	case []any, []map[string]any:
		return "(an array)"
	}
	return fmt.Sprint(v)
}

// formatDuration writes 24h and 1m rather than 24h0m0s and 1m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Roles a node may take.
var roles = []string{"api", "worker", "gateway"}

// checkPair requires other (named name) whenever v is set.
func checkPair(v, other, name string) string {
	if v != "" && other == "" {
		return "needs " + name
	}
	return ""
}

func checkRoles(v string) string {
	parts := strings.Split(v, ",")
	seen := map[string]bool{}
	for _, r := range parts {
		r = strings.TrimSpace(r)
		if !slices.Contains(roles, r) {
			return "is not a comma-separated list of " + strings.Join(roles, ", ")
		}
		if seen[r] {
			return "names " + r + " twice"
		}
		seen[r] = true
	}
	if seen["gateway"] && len(seen) > 1 {
		return "combines gateway with other roles; a gateway node runs alone"
	}
	return ""
}

func checkOneOf(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return ""
		}
	}
	return "is not one of " + strings.Join(allowed, ", ")
}

func checkRange(n, lo, hi int) string {
	if n < lo || n > hi {
		return fmt.Sprintf("is not between %d and %d", lo, hi)
	}
	return ""
}

func checkPositiveDuration(d time.Duration) string {
	if d <= 0 {
		return "is not a duration greater than 0, such as 10s"
	}
	return ""
}

func checkHostPort(s string) string {
	const allowed = "is not host:port, such as 127.0.0.1:8090, [::1]:8090 or :8090"
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return allowed
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || strings.HasPrefix(port, "+") {
		return allowed + " (the port is a number from 0 to 65535)"
	}
	return ""
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// schemeRE matches a URL scheme; one letter is taken as a Windows drive.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

func checkDBReplicas(c *Config) string {
	urls := c.DBReplicaURLs()
	if len(urls) == 0 {
		return ""
	}
	if !isPostgresURL(c.DB) {
		return "needs a PostgreSQL db (a postgres:// URL)"
	}
	for i, u := range urls {
		if !isPostgresURL(u) {
			return fmt.Sprintf("has entry %d that is not a postgres:// or postgresql:// URL", i+1)
		}
		if p := checkDB(u); p != "" {
			return fmt.Sprintf("has entry %d that %s", i+1, p)
		}
	}
	return ""
}

func checkDB(s string) string {
	const allowed = `is not "" (SQLite in the data directory), a postgres:// or postgresql:// URL, sqlite:PATH or a file path`
	switch {
	case s == "":
		return ""
	case isPostgresURL(s):
		u, err := url.Parse(s)
		if err != nil {
			return "is not a valid URL: " + urlProblem(err)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return "has no host; write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
		}
		return ""
	case strings.HasPrefix(s, "sqlite:"):
		if strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//") == "" {
			return "has no file path; write sqlite:PATH or sqlite:///ABSOLUTE/PATH"
		}
		return ""
	case schemeRE.MatchString(s):
		return allowed
	}
	return ""
}

// urlProblem returns what url.Parse found wrong without repeating the URL,
// which may hold a password.
func urlProblem(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "it does not parse"
}

var passwordParamRE = regexp.MustCompile(`([?&]password=)[^&#]*`)

// RedactURL replaces the password of a URL, in its user info or in a
// password query parameter, with "xxxxx". It works on text that does not
// parse as a URL too, so that an error never shows a password, and on a
// comma-separated list of URLs.
func RedactURL(s string) string {
	if strings.Count(s, "://") > 1 {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			if strings.Contains(p, "://") {
				parts[i] = redactOneURL(p)
			} else {
				parts[i] = passwordParamRE.ReplaceAllString(p, "${1}xxxxx")
			}
		}
		return strings.Join(parts, ",")
	}
	return redactOneURL(s)
}

func redactOneURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	limit := strings.IndexAny(rest, "?#")
	if limit < 0 {
		limit = len(rest)
	}
	if at := strings.LastIndex(rest[:limit], "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			rest = rest[:colon+1] + "xxxxx" + rest[at:]
		}
	}
	return passwordParamRE.ReplaceAllString(s[:i+3]+rest, "${1}xxxxx")
}
