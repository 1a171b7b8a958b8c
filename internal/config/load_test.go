package config

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
)

// load writes file (when not "") to a temporary strata.toml, names it with
// --config before args, and loads with env.
func load(t *testing.T, file string, env []string, args ...string) (Config, string, error) {
	t.Helper()
	var path string
	if file != "" {
		path = filepath.Join(t.TempDir(), "strata.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	c, err := Load(fs, env)
	return c, path, err
}

func TestLoadDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./strata.toml
	c, _, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.origin = c.origin
	if c != d {
		t.Errorf("Load with nothing set = %+v, want %+v", c, d)
	}
	for _, k := range keys {
		if got := c.Source(k.name); got != "default" {
			t.Errorf("Source(%q) = %q, want default", k.name, got)
		}
	}
	if c.File() != "" {
		t.Errorf("File() = %q, want none", c.File())
	}
}

func TestLoadPrecedence(t *testing.T) {
	const file = "log_level = \"debug\"\n"
	tests := []struct {
		name       string
		file       string
		env        []string
		args       []string
		want       string
		wantSource string // "FILE" stands for the file's path
	}{
		{name: "default", want: "info", wantSource: "default"},
		{name: "file beats default", file: file, want: "debug", wantSource: "FILE"},
		{name: "env beats file", file: file, env: []string{"STRATA_LOG_LEVEL=warn"}, want: "warn", wantSource: "STRATA_LOG_LEVEL"},
		{name: "flag beats env", file: file, env: []string{"STRATA_LOG_LEVEL=warn"}, args: []string{"--log-level", "error"}, want: "error", wantSource: "--log-level"},
		{name: "flag beats file", file: file, args: []string{"-log-level=error"}, want: "error", wantSource: "--log-level"},
		{name: "unset flag does not override env", env: []string{"STRATA_LOG_LEVEL=warn"}, args: []string{"--http", ":0"}, want: "warn", wantSource: "STRATA_LOG_LEVEL"},
		{name: "last env entry wins", env: []string{"STRATA_LOG_LEVEL=warn", "STRATA_LOG_LEVEL=error"}, want: "error", wantSource: "STRATA_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			c, path, err := load(t, tt.file, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			wantSource := strings.ReplaceAll(tt.wantSource, "FILE", path)
			if c.LogLevel != tt.want || c.Source("log_level") != wantSource {
				t.Errorf("log_level = %q from %q, want %q from %q", c.LogLevel, c.Source("log_level"), tt.want, wantSource)
			}
		})
	}
}

func TestLoadEveryKey(t *testing.T) {
	t.Chdir(t.TempDir())
	want := Config{
		HTTP:                "0.0.0.0:9000",
		Dir:                 "/var/lib/strata",
		DB:                  "postgres://app:pw@db:5432/app?sslmode=disable",
		DBReplicas:          "postgres://app:pw@r1:5432/app,postgres://app:pw@r2:5432/app",
		ReplicaMaxLag:       2 * time.Second,
		LogLevel:            "debug",
		LogFormat:           "json",
		Metrics:             false,
		MetricsHTTP:         "127.0.0.1:9100",
		PprofHTTP:           "127.0.0.1:6060",
		DrainDelay:          5 * time.Second,
		Roles:               "worker",
		JobWorkers:          16,
		JobQueues:           "emails=2, reports=1",
		Cron:                "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run",
		GatewayUpstreams:    "http://a:8090",
		GatewayDiscoverDNS:  "api.local",
		GatewayDiscoverPort: 9000,
		GatewayPolicy:       "p2c",
		TLSCert:             "/etc/tls/cert.pem",
		TLSKey:              "/etc/tls/key.pem",
		HTTPRedirect:        ":8080",
		WebhookAllowHosts:   "10.0.0.0/8",
		WebhookTimeout:      3 * time.Second,
		WebhookDisableAfter: 5,
		NATSURL:             "nats://n1:4222,nats://n2:4222",
		EventRetention:      2 * time.Hour,
		ShutdownTimeout:     30 * time.Second,
		MaxBodyBytes:        1 << 20,
		IdempotencyTTL:      2 * time.Hour,
		TokenTTL:            15 * time.Minute,
		MigrationsDir:       "/etc/strata/migrations",
		Automigrate:         false,
		SQLiteReaders:       8,
		SQLiteMmapSize:      "64MiB",
		PostgresMaxConns:    50,
		PasswordMinLength:   12,
		PasswordBlocklist:   "/etc/passwd",
		SMTPURL:             "smtp://mail:pw@relay:587",
		MailFrom:            "noreply@example.com",
		RedisURL:            "rediss://app:pw@cache:6380/2",
		RateLimit:           "100/min burst 20",
		RateLimitUser:       "off",
		RateLimitAuth:       "5/10s burst 1",
		RateLimitFail:       "closed",
		TrustedProxies:      "10.0.0.0/8, 192.0.2.7",
		Cache:               "redis",
		CacheSize:           "256MiB",
		CacheFlushInterval:  250 * time.Millisecond,
	}
	file := `
http = "0.0.0.0:9000"
dir = "/var/lib/strata"
db = "postgres://app:pw@db:5432/app?sslmode=disable"
db_replicas = "postgres://app:pw@r1:5432/app,postgres://app:pw@r2:5432/app"
replica_max_lag = "2s"
log_level = "debug"
log_format = "json"
metrics = false
metrics_http = "127.0.0.1:9100"
pprof_http = "127.0.0.1:6060"
drain_delay = "5s"
roles = "worker"
job_workers = 16
job_queues = "emails=2, reports=1"
cron = "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run"
gateway_upstreams = "http://a:8090"
gateway_discover_dns = "api.local"
gateway_discover_port = 9000
gateway_policy = "p2c"
tls_cert = "/etc/tls/cert.pem"
tls_key = "/etc/tls/key.pem"
http_redirect = ":8080"
webhook_allow_hosts = "10.0.0.0/8"
webhook_timeout = "3s"
webhook_disable_after = 5
nats_url = "nats://n1:4222,nats://n2:4222"
event_retention = "2h"
shutdown_timeout = "30s"
max_body_bytes = 1048576
idempotency_ttl = "2h"
token_ttl = "15m"
migrations_dir = "/etc/strata/migrations"
automigrate = false
sqlite_readers = 8
sqlite_mmap_size = "64MiB"
postgres_max_conns = 50
password_min_length = 12
password_blocklist = "/etc/passwd"
smtp_url = "smtp://mail:pw@relay:587"
mail_from = "noreply@example.com"
redis_url = "rediss://app:pw@cache:6380/2"
rate_limit = "100/min burst 20"
rate_limit_user = "off"
rate_limit_auth = "5/10s burst 1"
rate_limit_fail = "closed"
trusted_proxies = "10.0.0.0/8, 192.0.2.7"
cache = "redis"
cache_size = "256MiB"
cache_flush_interval = "250ms"
`
	env := []string{
		"STRATA_HTTP=0.0.0.0:9000", "STRATA_DIR=/var/lib/strata",
		"STRATA_DB_URL=postgres://app:pw@db:5432/app?sslmode=disable",
		"STRATA_DB_REPLICAS=postgres://app:pw@r1:5432/app,postgres://app:pw@r2:5432/app", "STRATA_REPLICA_MAX_LAG=2s",
		"STRATA_LOG_LEVEL=debug", "STRATA_LOG_FORMAT=json", "STRATA_SHUTDOWN_TIMEOUT=30s",
		"STRATA_METRICS=false", "STRATA_METRICS_HTTP=127.0.0.1:9100", "STRATA_PPROF_HTTP=127.0.0.1:6060", "STRATA_DRAIN_DELAY=5s",
		"STRATA_ROLES=worker", "STRATA_JOB_WORKERS=16",
		"STRATA_JOB_QUEUES=emails=2, reports=1", "STRATA_CRON=nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run",
		"STRATA_GATEWAY_UPSTREAMS=http://a:8090", "STRATA_GATEWAY_DISCOVER_DNS=api.local", "STRATA_GATEWAY_DISCOVER_PORT=9000",
		"STRATA_GATEWAY_POLICY=p2c", "STRATA_TLS_CERT=/etc/tls/cert.pem", "STRATA_TLS_KEY=/etc/tls/key.pem", "STRATA_HTTP_REDIRECT=:8080",
		"STRATA_WEBHOOK_ALLOW_HOSTS=10.0.0.0/8", "STRATA_WEBHOOK_TIMEOUT=3s", "STRATA_WEBHOOK_DISABLE_AFTER=5",
		"STRATA_NATS_URL=nats://n1:4222,nats://n2:4222", "STRATA_EVENT_RETENTION=2h",
		"STRATA_MAX_BODY_BYTES=1048576", "STRATA_IDEMPOTENCY_TTL=2h", "STRATA_TOKEN_TTL=15m",
		"STRATA_MIGRATIONS_DIR=/etc/strata/migrations", "STRATA_AUTOMIGRATE=false",
		"STRATA_SQLITE_READERS=8", "STRATA_SQLITE_MMAP_SIZE=64MiB", "STRATA_POSTGRES_MAX_CONNS=50",
		"STRATA_SMTP_URL=smtp://mail:pw@relay:587", "STRATA_MAIL_FROM=noreply@example.com", "STRATA_PASSWORD_MIN_LENGTH=12", "STRATA_PASSWORD_BLOCKLIST=/etc/passwd",
		"STRATA_REDIS_URL=rediss://app:pw@cache:6380/2", "STRATA_RATE_LIMIT=100/min burst 20",
		"STRATA_RATE_LIMIT_USER=off", "STRATA_RATE_LIMIT_AUTH=5/10s burst 1", "STRATA_RATE_LIMIT_FAIL=closed",
		"STRATA_TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.7",
		"STRATA_CACHE=redis", "STRATA_CACHE_SIZE=256MiB", "STRATA_CACHE_FLUSH_INTERVAL=250ms",
	}
	args := []string{
		"--http", "0.0.0.0:9000", "--dir", "/var/lib/strata",
		"--db", "postgres://app:pw@db:5432/app?sslmode=disable",
		"--db-replicas", "postgres://app:pw@r1:5432/app,postgres://app:pw@r2:5432/app", "--replica-max-lag", "2s",
		"--log-level", "debug", "--log-format", "json", "--shutdown-timeout", "30s",
		"--metrics=false", "--metrics-http", "127.0.0.1:9100", "--pprof-http", "127.0.0.1:6060", "--drain-delay", "5s",
		"--roles", "worker", "--job-workers", "16",
		"--job-queues", "emails=2, reports=1", "--cron", "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run",
		"--gateway-upstreams", "http://a:8090", "--gateway-discover-dns", "api.local", "--gateway-discover-port", "9000",
		"--gateway-policy", "p2c", "--tls-cert", "/etc/tls/cert.pem", "--tls-key", "/etc/tls/key.pem", "--http-redirect", ":8080",
		"--webhook-allow-hosts", "10.0.0.0/8", "--webhook-timeout", "3s", "--webhook-disable-after", "5",
		"--nats-url", "nats://n1:4222,nats://n2:4222", "--event-retention", "2h",
		"--max-body-bytes", "1048576", "--idempotency-ttl", "2h", "--token-ttl", "15m",
		"--migrations-dir", "/etc/strata/migrations", "--automigrate=false",
		"--sqlite-readers", "8", "--sqlite-mmap-size", "64MiB", "--postgres-max-conns", "50",
		"--smtp-url", "smtp://mail:pw@relay:587", "--mail-from", "noreply@example.com", "--password-min-length", "12", "--password-blocklist", "/etc/passwd",
		"--redis-url", "rediss://app:pw@cache:6380/2", "--rate-limit", "100/min burst 20",
		"--rate-limit-user", "off", "--rate-limit-auth", "5/10s burst 1", "--rate-limit-fail", "closed",
		"--trusted-proxies", "10.0.0.0/8, 192.0.2.7",
		"--cache", "redis", "--cache-size", "256MiB", "--cache-flush-interval", "250ms",
	}
	tests := []struct {
		name string
		file string
		env  []string
		args []string
	}{
		{name: "file", file: file},
		{name: "env", env: env},
		{name: "flags", args: args},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := load(t, tt.file, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			w := want
			w.origin = c.origin
			if c != w {
				t.Errorf("got  %+v\nwant %+v", c, w)
			}
			for _, k := range keys {
				// nats_listen excludes nats_url; TestLoadNATSListen sets it.
				if k.name != "nats_listen" && c.Source(k.name) == "default" {
					t.Errorf("key %s was not set from %s", k.name, tt.name)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want string // "FILE" stands for the file's path
	}{
		// Every validation rule, named from the environment.
		{name: "http not host:port", env: []string{"STRATA_HTTP=8090"},
			want: `config: http "8090" is not host:port, such as 127.0.0.1:8090, [::1]:8090 or :8090 (from STRATA_HTTP)`},
		{name: "http port out of range", env: []string{"STRATA_HTTP=localhost:70000"},
			want: `config: http "localhost:70000" is not host:port, such as 127.0.0.1:8090, [::1]:8090 or :8090 (the port is a number from 0 to 65535) (from STRATA_HTTP)`},
		{name: "http named port", env: []string{"STRATA_HTTP=localhost:http"},
			want: `config: http "localhost:http" is not host:port, such as 127.0.0.1:8090, [::1]:8090 or :8090 (the port is a number from 0 to 65535) (from STRATA_HTTP)`},
		{name: "dir empty", env: []string{"STRATA_DIR="},
			want: `config: dir "" is empty; a directory path is required (from STRATA_DIR)`},
		{name: "db unknown scheme, password hidden", env: []string{"STRATA_DB_URL=mysql://app:s3cret@db/app"},
			want: `config: db "mysql://app:xxxxx@db/app" is not "" (SQLite in the data directory), a postgres:// or postgresql:// URL, sqlite:PATH or a file path (from STRATA_DB_URL)`},
		{name: "db postgres without host", env: []string{"STRATA_DB_URL=postgres://app:s3cret@/app"},
			want: `config: db "postgres://app:xxxxx@/app" has no host; write postgres://USER:PASSWORD@HOST:PORT/DATABASE (from STRATA_DB_URL)`},
		{name: "db postgres bad URL", env: []string{"STRATA_DB_URL=postgres://app:s3cret@db:port/app"},
			want: `config: db "postgres://app:xxxxx@db:port/app" is not a valid URL: invalid port ":port" after host (from STRATA_DB_URL)`},
		{name: "db sqlite without path", env: []string{"STRATA_DB_URL=sqlite:"},
			want: `config: db "sqlite:" has no file path; write sqlite:PATH or sqlite:///ABSOLUTE/PATH (from STRATA_DB_URL)`},
		{name: "roles unknown", env: []string{"STRATA_ROLES=api,gateway2"},
			want: `config: roles "api,gateway2" is not a comma-separated list of api, worker, gateway (from STRATA_ROLES)`},
		{name: "job_queues bad count", env: []string{"STRATA_JOB_QUEUES=default=4, emails=two"},
			want: `config: job_queues "default=4, emails=two" is not a list of queues such as "default=4, emails=2": queue emails has workers "two", which is not a whole number (from STRATA_JOB_QUEUES)`},
		{name: "job_queues without =", file: `job_queues = "emails"`,
			want: `config: job_queues "emails" is not a list of queues such as "default=4, emails=2": entry "emails" has no "=" between the queue and its workers, as in "emails=2" (from FILE)`},
		{name: "job_queues default twice", env: []string{"STRATA_JOB_WORKERS=8", "STRATA_JOB_QUEUES=default=4"},
			want: `config: job_queues "default=4" gives the default queue 4 workers and job_workers gives it 8 (from STRATA_JOB_WORKERS); set it in one of them (from STRATA_JOB_QUEUES)`},
		{name: "cron bad spec", env: []string{"STRATA_CRON=nightly: 0 25 * * * report.nightly"},
			want: `config: cron "nightly: 0 25 * * * report.nightly" is not a list of schedules such as "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run": schedule nightly: cron "0 25 * * *": hour`},
		{name: "cron name twice", args: []string{"--cron", "a: @daily x; a: @hourly y"},
			want: `config: cron "a: @daily x; a: @hourly y" is not a list of schedules such as "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run": schedule a is named twice (from --cron)`},
		{name: "cron without kind", env: []string{"STRATA_CRON=cleanup: @every 1h"},
			want: `config: cron "cleanup: @every 1h" is not a list of schedules such as "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run": schedule cleanup: the job kind is missing after the spec "@every 1h" (from STRATA_CRON)`},
		{name: "gateway with api", env: []string{"STRATA_ROLES=gateway,api", "STRATA_GATEWAY_UPSTREAMS=http://a:8090"},
			want: `config: roles "gateway,api" combines gateway with other roles; a gateway node runs alone (from STRATA_ROLES)`},
		{name: "gateway without upstreams", env: []string{"STRATA_ROLES=gateway"},
			want: `config: roles "gateway" includes gateway but neither gateway_upstreams nor gateway_discover_dns is set (from STRATA_ROLES)`},
		{name: "tls_cert without key", env: []string{"STRATA_TLS_CERT=/c.pem"},
			want: `config: tls_cert "/c.pem" needs tls_key (from STRATA_TLS_CERT)`},
		{name: "roles twice", env: []string{"STRATA_ROLES=api,api"},
			want: `config: roles "api,api" names api twice (from STRATA_ROLES)`},
		{name: "nats_url", env: []string{"STRATA_NATS_URL=nats://a:4222,http://b"},
			want: `config: nats_url "nats://a:4222,http://b" is not a comma-separated list of nats://host:port URLs (from STRATA_NATS_URL)`},
		{name: "nats_listen with nats_url", env: []string{"STRATA_NATS_URL=nats://a:4222", "STRATA_NATS_LISTEN=127.0.0.1:4222"},
			want: `config: nats_listen "127.0.0.1:4222" applies only to the embedded server; nats_url is set (from STRATA_NATS_LISTEN)`},
		{name: "log_level", env: []string{"STRATA_LOG_LEVEL=verbose"},
			want: `config: log_level "verbose" is not one of debug, info, warn, error (from STRATA_LOG_LEVEL)`},
		{name: "log_format", env: []string{"STRATA_LOG_FORMAT=xml"},
			want: `config: log_format "xml" is not one of auto, text, json (from STRATA_LOG_FORMAT)`},
		{name: "shutdown_timeout not a duration", env: []string{"STRATA_SHUTDOWN_TIMEOUT=ten"},
			want: `config: shutdown_timeout "ten" is not a duration such as 10s, 1m30s or 24h (from STRATA_SHUTDOWN_TIMEOUT)`},
		{name: "shutdown_timeout zero", env: []string{"STRATA_SHUTDOWN_TIMEOUT=0s"},
			want: `config: shutdown_timeout 0s is not a duration greater than 0, such as 10s (from STRATA_SHUTDOWN_TIMEOUT)`},
		{name: "max_body_bytes not an integer", env: []string{"STRATA_MAX_BODY_BYTES=10MB"},
			want: `config: max_body_bytes "10MB" is not an integer (from STRATA_MAX_BODY_BYTES)`},
		{name: "max_body_bytes zero", env: []string{"STRATA_MAX_BODY_BYTES=0"},
			want: `config: max_body_bytes 0 is not greater than 0 (from STRATA_MAX_BODY_BYTES)`},
		{name: "idempotency_ttl negative", env: []string{"STRATA_IDEMPOTENCY_TTL=-1h"},
			want: `config: idempotency_ttl -1h is not a duration greater than 0, such as 10s (from STRATA_IDEMPOTENCY_TTL)`},
		{name: "token_ttl zero", env: []string{"STRATA_TOKEN_TTL=0"},
			want: `config: token_ttl 0s is not a duration greater than 0, such as 10s (from STRATA_TOKEN_TTL)`},
		{name: "automigrate", env: []string{"STRATA_AUTOMIGRATE=maybe"},
			want: `config: automigrate "maybe" is not true or false (from STRATA_AUTOMIGRATE)`},
		{name: "sqlite_readers zero", env: []string{"STRATA_SQLITE_READERS=0"},
			want: `config: sqlite_readers 0 is not between 1 and 64 (from STRATA_SQLITE_READERS)`},
		{name: "sqlite_readers too many", env: []string{"STRATA_SQLITE_READERS=65"},
			want: `config: sqlite_readers 65 is not between 1 and 64 (from STRATA_SQLITE_READERS)`},
		{name: "sqlite_mmap_size not a size", env: []string{"STRATA_SQLITE_MMAP_SIZE=lots"},
			want: `config: sqlite_mmap_size "lots" is not a size such as 256MiB or 0: it does not start with a number (from STRATA_SQLITE_MMAP_SIZE)`},
		{name: "sqlite_mmap_size too large", file: `sqlite_mmap_size = "2TiB"`,
			want: `config: sqlite_mmap_size "2TiB" is larger than 1TiB (from FILE)`},
		{name: "sqlite_readers not an integer", env: []string{"STRATA_SQLITE_READERS=four"},
			want: `config: sqlite_readers "four" is not an integer (from STRATA_SQLITE_READERS)`},
		{name: "postgres_max_conns negative", env: []string{"STRATA_POSTGRES_MAX_CONNS=-1"},
			want: `config: postgres_max_conns -1 is not between 0 and 1000 (from STRATA_POSTGRES_MAX_CONNS)`},
		{name: "postgres_max_conns too many", env: []string{"STRATA_POSTGRES_MAX_CONNS=1001"},
			want: `config: postgres_max_conns 1001 is not between 0 and 1000 (from STRATA_POSTGRES_MAX_CONNS)`},
		{name: "password_min_length", env: []string{"STRATA_PASSWORD_MIN_LENGTH=4"},
			want: `config: password_min_length 4 is not between 8 and 128 (from STRATA_PASSWORD_MIN_LENGTH)`},
		{name: "password_blocklist missing", env: []string{"STRATA_PASSWORD_BLOCKLIST=/nonexistent/list.txt"},
			want: `config: password_blocklist "/nonexistent/list.txt" cannot be read: stat /nonexistent/list.txt: no such file or directory (from STRATA_PASSWORD_BLOCKLIST)`},
		{name: "smtp_url scheme", env: []string{"STRATA_SMTP_URL=http://relay:25"},
			want: `config: smtp_url "http://relay:25" is not an smtp://[user:pass@]host:port URL (from STRATA_SMTP_URL)`},
		{name: "mail_from missing", env: []string{"STRATA_SMTP_URL=smtp://relay:25"},
			want: `config: mail_from "" must be an email address when smtp_url is set`},
		{name: "redis_url scheme, password hidden", env: []string{"STRATA_REDIS_URL=http://app:s3cret@cache:6379"},
			want: `config: redis_url "http://app:xxxxx@cache:6379" is not a redis:// or rediss:// URL, such as redis://localhost:6379/0 (from STRATA_REDIS_URL)`},
		{name: "redis_url bare host", env: []string{"STRATA_REDIS_URL=localhost:6379"},
			want: `config: redis_url "localhost:6379" is not a redis:// or rediss:// URL, such as redis://localhost:6379/0 (from STRATA_REDIS_URL)`},
		{name: "redis_url without host", env: []string{"STRATA_REDIS_URL=redis://:s3cret@/0"},
			want: `config: redis_url "redis://:xxxxx@/0" has no host; write redis://[USER:PASSWORD@]HOST:PORT[/DB] (from STRATA_REDIS_URL)`},
		{name: "redis_url bad port", env: []string{"STRATA_REDIS_URL=redis://cache:0"},
			want: `config: redis_url "redis://cache:0" has a port that is not a number from 1 to 65535 (from STRATA_REDIS_URL)`},
		{name: "redis_url bad URL", env: []string{"STRATA_REDIS_URL=redis://app:s3cret@cache:port/0"},
			want: `config: redis_url "redis://app:xxxxx@cache:port/0" is not a valid URL: invalid port ":port" after host (from STRATA_REDIS_URL)`},
		{name: "redis_url database", env: []string{"STRATA_REDIS_URL=redis://cache:6379/cache"},
			want: `config: redis_url "redis://cache:6379/cache" has a database that is not a number; write redis://HOST:PORT/DB with DB such as 0 (from STRATA_REDIS_URL)`},
		{name: "rate_limit without period", env: []string{"STRATA_RATE_LIMIT=100"},
			want: `config: rate_limit "100" is not "off" or a limit such as "100/min burst 20": missing "/" between rate and period, as in "100/min" (from STRATA_RATE_LIMIT)`},
		{name: "rate_limit unknown unit", env: []string{"STRATA_RATE_LIMIT=100/week"},
			want: `config: rate_limit "100/week" is not "off" or a limit such as "100/min burst 20": period: unknown unit "week" (want us, ms, s, min, h or d) (from STRATA_RATE_LIMIT)`},
		{name: "rate_limit_user zero rate", env: []string{"STRATA_RATE_LIMIT_USER=0/s"},
			want: `config: rate_limit_user "0/s" is not "off" or a limit such as "100/min burst 20": rate: must be at least 1 (from STRATA_RATE_LIMIT_USER)`},
		{name: "rate_limit_auth bad burst", env: []string{"STRATA_RATE_LIMIT_AUTH=20/min burst"},
			want: `config: rate_limit_auth "20/min burst" is not "off" or a limit such as "100/min burst 20": missing count after "burst" (from STRATA_RATE_LIMIT_AUTH)`},
		{name: "rate_limit_auth empty", env: []string{"STRATA_RATE_LIMIT_AUTH="},
			want: `config: rate_limit_auth "" is not "off" or a limit such as "100/min burst 20": missing "/" between rate and period, as in "100/min" (from STRATA_RATE_LIMIT_AUTH)`},
		{name: "rate_limit too fast", env: []string{"STRATA_RATE_LIMIT=2000000/s"},
			want: `config: rate_limit "2000000/s" is not "off" or a limit such as "100/min burst 20": 2000000 per 1s is more than one per microsecond (from STRATA_RATE_LIMIT)`},
		{name: "rate_limit_fail", env: []string{"STRATA_RATE_LIMIT_FAIL=half-open"},
			want: `config: rate_limit_fail "half-open" is not one of open, closed (from STRATA_RATE_LIMIT_FAIL)`},
		{name: "trusted_proxies not an address", env: []string{"STRATA_TRUSTED_PROXIES=10.0.0.0/8, proxy.internal"},
			want: `config: trusted_proxies "10.0.0.0/8, proxy.internal" has "proxy.internal", which is not an IP address or a CIDR such as 10.0.0.0/8 (from STRATA_TRUSTED_PROXIES)`},
		{name: "trusted_proxies bad prefix length", env: []string{"STRATA_TRUSTED_PROXIES=10.0.0.0/33"},
			want: `config: trusted_proxies "10.0.0.0/33" has "10.0.0.0/33", which is not an IP address or a CIDR such as 10.0.0.0/8 (from STRATA_TRUSTED_PROXIES)`},
		{name: "cache unknown", env: []string{"STRATA_CACHE=disk"},
			want: `config: cache "disk" is not one of auto, memory, redis, off (from STRATA_CACHE)`},
		{name: "cache redis without redis_url", env: []string{"STRATA_CACHE=redis"},
			want: `config: cache "redis" needs redis_url (from STRATA_CACHE)`},
		{name: "cache_size unit", env: []string{"STRATA_CACHE_SIZE=64M"},
			want: `config: cache_size "64M" is not a size such as 64MiB or 1GB: it has unit "M", not one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB (from STRATA_CACHE_SIZE)`},
		{name: "cache_size no number", file: `cache_size = "lots"`,
			want: `config: cache_size "lots" is not a size such as 64MiB or 1GB: it does not start with a number (from FILE)`},
		{name: "cache_size too small", args: []string{"--cache-size", "512KiB"},
			want: `config: cache_size "512KiB" is not between 1MiB and 1TiB (from --cache-size)`},
		{name: "cache_flush_interval too short", env: []string{"STRATA_CACHE_FLUSH_INTERVAL=1ms"},
			want: `config: cache_flush_interval 1ms is not between 10ms and 1h (from STRATA_CACHE_FLUSH_INTERVAL)`},
		{name: "file rate_limit", file: `rate_limit = "lots"`,
			want: `config: rate_limit "lots" is not "off" or a limit such as "100/min burst 20": missing "/" between rate and period, as in "100/min" (from FILE)`},

		// The same shape from flags and from the file.
		{name: "flag log_level", args: []string{"--log-level", "verbose"},
			want: `config: log_level "verbose" is not one of debug, info, warn, error (from --log-level)`},
		{name: "flag automigrate", args: []string{"--automigrate=sometimes"},
			want: `config: automigrate "sometimes" is not true or false (from --automigrate)`},
		{name: "file log_level", file: `log_level = "verbose"`,
			want: `config: log_level "verbose" is not one of debug, info, warn, error (from FILE)`},
		{name: "file integer as string", file: `max_body_bytes = "10MB"`,
			want: `config: max_body_bytes "10MB" is not an integer (from FILE)`},
		{name: "file duration as integer", file: `shutdown_timeout = 10`,
			want: `config: shutdown_timeout 10 is not a duration string such as "10s" or "1m30s" (from FILE)`},
		{name: "file bad duration", file: `token_ttl = "1 hour"`,
			want: `config: token_ttl "1 hour" is not a duration such as 10s, 1m30s or 24h (from FILE)`},
		{name: "file bool as string", file: `automigrate = "yes"`,
			want: `config: automigrate "yes" is not true or false (from FILE)`},
		{name: "file string as integer", file: `http = 8090`,
			want: `config: http 8090 is not a string (from FILE)`},
		{name: "file table for a string", file: `http = { host = "x" }`,
			want: `config: http (a table) is not a string (from FILE)`},
		{name: "file array for an integer", file: `sqlite_readers = [1, 2]`,
			want: `config: sqlite_readers (an array) is not an integer (from FILE)`},
		{name: "file float for an integer", file: `sqlite_readers = 4.0`,
			want: `config: sqlite_readers 4 is not an integer (from FILE)`},

		// Unknown names and bad syntax.
		{name: "unknown file key", file: "htpp = \":8090\"\n",
			want: `config: unknown key "htpp" in FILE (known keys: http, dir, db, db_replicas, replica_max_lag, log_level, log_format, metrics, metrics_http, pprof_http, drain_delay, roles, job_workers, job_queues, cron, gateway_upstreams, gateway_discover_dns, gateway_discover_port, gateway_policy, tls_cert, tls_key, http_redirect, webhook_allow_hosts, webhook_timeout, webhook_disable_after, nats_url, nats_listen, event_retention, shutdown_timeout, max_body_bytes, idempotency_ttl, token_ttl, migrations_dir, automigrate, sqlite_readers, sqlite_mmap_size, postgres_max_conns, password_min_length, password_blocklist, smtp_url, mail_from, redis_url, rate_limit, rate_limit_user, rate_limit_auth, rate_limit_fail, trusted_proxies, cache, cache_size, cache_flush_interval)`},
		{name: "unknown file table", file: "[server]\nhttp = \":8090\"\n",
			want: `config: unknown key "server" in FILE (known keys: `},
		{name: "unknown env var", env: []string{"STRATA_HTPP=:8090"},
			want: `config: unknown environment variable STRATA_HTPP (known: STRATA_CONFIG, STRATA_HTTP, STRATA_DIR, STRATA_DB_URL, STRATA_DB_REPLICAS, STRATA_REPLICA_MAX_LAG, STRATA_LOG_LEVEL, STRATA_LOG_FORMAT, STRATA_METRICS, STRATA_METRICS_HTTP, STRATA_PPROF_HTTP, STRATA_DRAIN_DELAY, STRATA_ROLES, STRATA_JOB_WORKERS, STRATA_JOB_QUEUES, STRATA_CRON, STRATA_GATEWAY_UPSTREAMS, STRATA_GATEWAY_DISCOVER_DNS, STRATA_GATEWAY_DISCOVER_PORT, STRATA_GATEWAY_POLICY, STRATA_TLS_CERT, STRATA_TLS_KEY, STRATA_HTTP_REDIRECT, STRATA_WEBHOOK_ALLOW_HOSTS, STRATA_WEBHOOK_TIMEOUT, STRATA_WEBHOOK_DISABLE_AFTER, STRATA_NATS_URL, STRATA_NATS_LISTEN, STRATA_EVENT_RETENTION, STRATA_SHUTDOWN_TIMEOUT, STRATA_MAX_BODY_BYTES, STRATA_IDEMPOTENCY_TTL, STRATA_TOKEN_TTL, STRATA_MIGRATIONS_DIR, STRATA_AUTOMIGRATE, STRATA_SQLITE_READERS, STRATA_SQLITE_MMAP_SIZE, STRATA_POSTGRES_MAX_CONNS, STRATA_PASSWORD_MIN_LENGTH, STRATA_PASSWORD_BLOCKLIST, STRATA_SMTP_URL, STRATA_MAIL_FROM, STRATA_REDIS_URL, STRATA_RATE_LIMIT, STRATA_RATE_LIMIT_USER, STRATA_RATE_LIMIT_AUTH, STRATA_RATE_LIMIT_FAIL, STRATA_TRUSTED_PROXIES, STRATA_CACHE, STRATA_CACHE_SIZE, STRATA_CACHE_FLUSH_INTERVAL)`},
		{name: "env name of the db key is STRATA_DB_URL", env: []string{"STRATA_DB=x.db"},
			want: `config: unknown environment variable STRATA_DB (known: `},
		{name: "bad TOML names the line", file: "log_level = \"debug\"\nhttp = 127.0.0.1:8090\n",
			want: `config: FILE line 2: `},
		{name: "duplicate TOML key", file: "http = \":1\"\nhttp = \":2\"\n",
			want: `config: FILE line 2: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			_, path, err := load(t, tt.file, tt.env, tt.args...)
			if err == nil {
				t.Fatalf("Load succeeded, want error %q", tt.want)
			}
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if got := err.Error(); !strings.HasPrefix(got, want) {
				t.Errorf("error:\n got  %s\n want %s", got, want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %s", err)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Chdir(t.TempDir())
	_, _, err := load(t, "htpp = 1\nlog_format = \"xml\"\n",
		[]string{"STRATA_NOPE=1", "STRATA_LOG_LEVEL=loud"}, "--sqlite-readers", "x")
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, want := range []string{`unknown key "htpp"`, "unknown environment variable STRATA_NOPE",
		`log_level "loud"`, `log_format "xml"`, `sqlite_readers "x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%s", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 5 {
		t.Errorf("got %d lines, want 5:\n%s", n, err)
	}
}

func TestLoadIgnoresOtherEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	env := []string{
		"HOME=/root", "PATH=/bin", "STRATA", "STRATA_TEST_POSTGRES_URL=postgres://x@y/z",
		"STRATA_FUZZTIME=1s", "STRATA_SKIP_FUZZ=1", "strata_http=nope",
	}
	if _, _, err := load(t, "", env); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigFile(t *testing.T) {
	const valid = "log_level = \"debug\"\n"
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("default file is read when present", func(t *testing.T) {
		t.Chdir(t.TempDir())
		write(t, "strata.toml", valid)
		c, _, err := load(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.LogLevel != "debug" || c.Source("log_level") != "strata.toml" || c.File() != "strata.toml" {
			t.Errorf("log_level %q from %q, file %q", c.LogLevel, c.Source("log_level"), c.File())
		}
	})
	t.Run("STRATA_CONFIG names the file", func(t *testing.T) {
		t.Chdir(t.TempDir())
		write(t, "strata.toml", "bad key = 1\n")
		write(t, "other.toml", valid)
		c, _, err := load(t, "", []string{"STRATA_CONFIG=other.toml"})
		if err != nil {
			t.Fatal(err)
		}
		if c.LogLevel != "debug" || c.File() != "other.toml" {
			t.Errorf("log_level %q, file %q", c.LogLevel, c.File())
		}
		if got := c.Redacted()["config"]; got.(map[string]any)["source"] != "STRATA_CONFIG" {
			t.Errorf("Redacted config = %v", got)
		}
	})
	t.Run("--config beats STRATA_CONFIG", func(t *testing.T) {
		t.Chdir(t.TempDir())
		write(t, "a.toml", "log_level = \"warn\"\n")
		write(t, "b.toml", "log_level = \"error\"\n")
		c, _, err := load(t, "", []string{"STRATA_CONFIG=a.toml"}, "--config", "b.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c.LogLevel != "error" {
			t.Errorf("log_level = %q, want error from b.toml", c.LogLevel)
		}
	})
	t.Run("empty --config reads no file", func(t *testing.T) {
		t.Chdir(t.TempDir())
		write(t, "strata.toml", "bad key = 1\n")
		if _, _, err := load(t, "", nil, "--config="); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing named file is an error", func(t *testing.T) {
		t.Chdir(t.TempDir())
		for _, tc := range []struct {
			env  []string
			args []string
			want string
		}{
			{args: []string{"--config", "nope.toml"}, want: "config: config file named by --config: open nope.toml: "},
			{env: []string{"STRATA_CONFIG=nope.toml"}, want: "config: config file named by STRATA_CONFIG: open nope.toml: "},
		} {
			_, _, err := load(t, "", tc.env, tc.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %v, want %s...", err, tc.want)
			}
		}
	})
	t.Run("empty file", func(t *testing.T) {
		t.Chdir(t.TempDir())
		write(t, "strata.toml", "# nothing\n")
		if _, _, err := load(t, "", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadNilFlagSet(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Load(nil, []string{"STRATA_HTTP=:0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != ":0" {
		t.Errorf("HTTP = %q", c.HTTP)
	}
}

func TestLoadIgnoresOtherFlags(t *testing.T) {
	t.Chdir(t.TempDir())
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	Register(fs)
	force := fs.Bool("force", false, "a flag of the command, not of the configuration")
	if err := fs.Parse([]string{"--force", "--dir", "/tmp/x"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !*force || c.Dir != "/tmp/x" {
		t.Errorf("force %v, dir %q", *force, c.Dir)
	}
}

func TestRegister(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	Register(fs)
	for _, name := range []string{"config", "http", "dir", "db", "log-level", "log-format", "shutdown-timeout",
		"max-body-bytes", "idempotency-ttl", "token-ttl", "migrations-dir", "automigrate",
		"sqlite-readers", "postgres-max-conns"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag --%s", name)
			continue
		}
		if !strings.Contains(f.Usage, "(env STRATA_") {
			t.Errorf("--%s help does not name its environment variable: %q", name, f.Usage)
		}
	}
	if got := fs.Lookup("db").Usage; !strings.Contains(got, "STRATA_DB_URL") {
		t.Errorf("--db help = %q, want STRATA_DB_URL", got)
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, want := range []string{"-http host:port", "(default 127.0.0.1:8090)", "-shutdown-timeout duration", "(default 10s)", "(default 24h)", "(default true)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help does not show %s:\n%s", want, help.String())
		}
	}

	// A bare bool flag sets true.
	t.Chdir(t.TempDir())
	c, _, err := load(t, "automigrate = false\n", nil, "--automigrate")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Automigrate || c.Source("automigrate") != "--automigrate" {
		t.Errorf("automigrate %v from %q", c.Automigrate, c.Source("automigrate"))
	}
}

func TestLoadNATSListen(t *testing.T) {
	t.Chdir(t.TempDir())
	c, _, err := load(t, "", []string{"STRATA_NATS_LISTEN=127.0.0.1:4333"})
	if err != nil || c.NATSListen != "127.0.0.1:4333" || c.Source("nats_listen") != "STRATA_NATS_LISTEN" {
		t.Fatalf("nats_listen: %q from %q, %v", c.NATSListen, c.Source("nats_listen"), err)
	}
}

func TestRateLimitKeys(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Run("defaults", func(t *testing.T) {
		c, _, err := load(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		anon, user, creds := c.Limits()
		for _, tc := range []struct {
			got  ratelimit.Limit
			want ratelimit.Limit
		}{
			{anon, ratelimit.Limit{Rate: 600, Period: time.Minute, Burst: 100}},
			{user, ratelimit.Limit{Rate: 1200, Period: time.Minute, Burst: 200}},
			{creds, ratelimit.Limit{Rate: 30, Period: time.Minute, Burst: 15}},
		} {
			if tc.got != tc.want {
				t.Errorf("limit %+v, want %+v", tc.got, tc.want)
			}
		}
		if c.FailPolicy() != ratelimit.FailOpen || c.RedisURL != "" || len(c.Proxies()) != 0 {
			t.Errorf("fail policy %v, redis %q, proxies %v", c.FailPolicy(), c.RedisURL, c.Proxies())
		}
	})
	t.Run("set", func(t *testing.T) {
		c, _, err := load(t, "", []string{
			"STRATA_RATE_LIMIT=off", "STRATA_RATE_LIMIT_USER=5/10s burst 1", "STRATA_RATE_LIMIT_AUTH=off",
			"STRATA_RATE_LIMIT_FAIL=closed", "STRATA_REDIS_URL=redis://localhost:6379",
			"STRATA_TRUSTED_PROXIES= 10.1.2.3/8 ,192.0.2.7,, 2001:db8::/32, ::ffff:198.51.100.1, ::ffff:203.0.113.0/120",
		})
		if err != nil {
			t.Fatal(err)
		}
		anon, user, creds := c.Limits()
		if anon != (ratelimit.Limit{}) || creds != (ratelimit.Limit{}) {
			t.Errorf("off limits = %+v, %+v, want zero", anon, creds)
		}
		if want := (ratelimit.Limit{Rate: 5, Period: 10 * time.Second, Burst: 1}); user != want {
			t.Errorf("user limit %+v, want %+v", user, want)
		}
		if c.FailPolicy() != ratelimit.FailClosed {
			t.Errorf("fail policy %v", c.FailPolicy())
		}
		var got []string
		for _, p := range c.Proxies() {
			got = append(got, p.String())
		}
		want := "10.0.0.0/8 192.0.2.7/32 2001:db8::/32 198.51.100.1/32 203.0.113.0/24"
		if strings.Join(got, " ") != want {
			t.Errorf("proxies %v, want %s", got, want)
		}
	})
	t.Run("redacted", func(t *testing.T) {
		c, _, err := load(t, "", []string{"STRATA_REDIS_URL=redis://app:s3cret@cache:6379/0"})
		if err != nil {
			t.Fatal(err)
		}
		got := c.Redacted()["redis_url"].(map[string]any)["value"]
		if got != "redis://app:xxxxx@cache:6379/0" {
			t.Errorf("redacted redis_url = %v", got)
		}
	})
}
