// Package config builds Strata's configuration from, in order of precedence,
// command-line flags, STRATA_* environment variables, a TOML file and
// defaults. Every key is described once, in the table in keys.go, which
// drives all three sources, the validation and the redacted listing.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
)

// Config is the validated configuration of one Strata process.
type Config struct {
	HTTP                string        // address to listen on, host:port
	Dir                 string        // data directory
	DB                  string        // "" (SQLite in Dir), postgres:// URL, sqlite:PATH or a file path
	DBReplicas          string        // comma-separated postgres:// URLs of read replicas of DB
	ReplicaMaxLag       time.Duration // a replica further behind gets no reads
	LogLevel            string        // debug, info, warn or error
	LogFormat           string        // auto, text or json
	Metrics             bool          // serve /metrics
	MetricsHTTP         string        // separate address for /metrics; "" means HTTP
	PprofHTTP           string        // address for /debug/pprof/; "" means off
	DrainDelay          time.Duration // readiness fails this long before the listener closes
	Roles               string        // comma-separated: api, worker
	JobWorkers          int           // jobs a worker node runs at once
	JobQueues           string        // queues a worker node works: "default=4, emails=2"
	Cron                string        // schedules: "name: spec kind; ..."
	GatewayUpstreams    string        // the api nodes of a gateway
	GatewayDiscoverDNS  string        // a DNS name whose addresses are the api nodes
	GatewayDiscoverPort int           // their port
	GatewayPolicy       string        // round_robin, least_conn, weighted or p2c
	TLSCert             string        // certificate file of a gateway
	TLSKey              string        // its key
	HTTPRedirect        string        // where a TLS gateway redirects HTTP to HTTPS
	WebhookAllowHosts   string        // hosts webhooks may call although private
	WebhookTimeout      time.Duration // one delivery
	WebhookDisableAfter int           // failures in a row before an endpoint is disabled
	NATSURL             string        // external NATS servers; "" runs the embedded one
	NATSListen          string        // address where the embedded NATS server accepts clients
	EventRetention      time.Duration // how long events are kept for replay
	ShutdownTimeout     time.Duration // grace period for in-flight work at shutdown
	MaxBodyBytes        int64         // largest request body accepted
	IdempotencyTTL      time.Duration // how long idempotency keys are remembered
	TokenTTL            time.Duration // lifetime of superuser access tokens
	MigrationsDir       string        // "" means Dir/migrations
	Automigrate         bool          // apply pending migration files at start
	SQLiteReaders       int           // size of the SQLite read pool
	SQLiteMmapSize      string        // how much of the SQLite file is read through memory mapping, a size; "0" reads with read calls
	PostgresMaxConns    int           // 0 means the pgxpool default
	PasswordMinLength   int           // shortest password users may choose
	PasswordBlocklist   string        // file of passwords users may not choose
	SMTPURL             string        // mail relay; "" sends no email
	MailFrom            string        // sender of Strata's emails
	RedisURL            string        // shared rate-limit state; "" keeps it in-process
	RateLimit           string        // per anonymous client IP; "off" or a ratelimit.ParseLimit limit
	RateLimitUser       string        // per user or API key; "off" or a limit
	RateLimitAuth       string        // per client IP on the credential routes; "off" or a limit
	RateLimitFail       string        // open or closed: requests while Redis is unreachable
	TrustedProxies      string        // comma-separated IPs and CIDRs whose forwarding headers are believed
	Cache               string        // auto, memory, redis or off: where collections with a cache policy are cached
	CacheSize           string        // bound of the in-process cache, a size such as 64MiB
	CacheFlushInterval  time.Duration // how often write-back counters are written to the database

	// origin records where each value came from; nil for a Config not built
	// by Load. It is never modified after Load returns.
	origin *origin
}

// origin remembers the source of each value, for error messages and for
// Redacted: "default", a file name, an environment variable or a flag.
type origin struct {
	file       string            // config file read, "" if none
	fileSource string            // what named the file: "--config", "STRATA_CONFIG" or "default"
	sources    map[string]string // key name -> source
}

// WebhookHosts returns webhook_allow_hosts as a list.
func (c Config) WebhookHosts() []string {
	var out []string
	for _, h := range strings.Split(c.WebhookAllowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// HasRole reports whether the node takes role ("api" or "worker").
func (c Config) HasRole(role string) bool {
	for _, r := range strings.Split(c.Roles, ",") {
		if strings.TrimSpace(r) == role {
			return true
		}
	}
	return false
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		HTTP:                "127.0.0.1:8090",
		Dir:                 "./strata_data",
		DB:                  "",
		ReplicaMaxLag:       5 * time.Second,
		LogLevel:            "info",
		LogFormat:           "auto",
		Metrics:             true,
		EventRetention:      24 * time.Hour,
		Roles:               "api,worker",
		JobWorkers:          4,
		WebhookTimeout:      10 * time.Second,
		WebhookDisableAfter: 20,
		GatewayDiscoverPort: 8090,
		GatewayPolicy:       "round_robin",
		ShutdownTimeout:     10 * time.Second,
		MaxBodyBytes:        10 << 20,
		IdempotencyTTL:      24 * time.Hour,
		TokenTTL:            time.Hour,
		MigrationsDir:       "",
		Automigrate:         true,
		SQLiteReaders:       4,
		SQLiteMmapSize:      "0",
		PostgresMaxConns:    0,
		PasswordMinLength:   10,
		RateLimit:           DefaultRateLimit,
		RateLimitUser:       DefaultRateLimitUser,
		RateLimitAuth:       DefaultRateLimitAuth,
		RateLimitFail:       "open",
		Cache:               "auto",
		CacheSize:           "64MiB",
		CacheFlushInterval:  time.Second,
	}
}

// The default rate limits are far above what a person using an app
// makes, so that only scripts and floods meet them: 10 requests a second
// from one anonymous address (IPv6: one /64) after 100 at once, 20 a
// second per user or API key after 200, and one sign-in, sign-up or
// refresh every 2 seconds per address after 15.
const (
	DefaultRateLimit     = "600/min burst 100"
	DefaultRateLimitUser = "1200/min burst 200"
	DefaultRateLimitAuth = "30/min burst 15"
)

// Limits returns the parsed rate limits: for anonymous clients, for users
// and API keys, and for the credential routes. A limit set to "off" is the
// zero Limit. c must be valid.
func (c Config) Limits() (anonymous, user, credentials ratelimit.Limit) {
	parse := func(s string) ratelimit.Limit {
		l, _ := ratelimit.ParseLimit(s) // "off" and invalid text give the zero Limit
		return l
	}
	return parse(c.RateLimit), parse(c.RateLimitUser), parse(c.RateLimitAuth)
}

// FailPolicy returns what the rate limiter does while Redis is
// unreachable.
func (c Config) FailPolicy() ratelimit.FailPolicy {
	if c.RateLimitFail == "closed" {
		return ratelimit.FailClosed
	}
	return ratelimit.FailOpen
}

// Proxies returns the trusted proxies as prefixes. c must be valid.
func (c Config) Proxies() []netip.Prefix {
	p, _ := parseProxies(c.TrustedProxies)
	return p
}

// Validate checks every value against its rule. The error names the key, the
// value, what is allowed and, for a loaded Config, where the value came from;
// when several values are wrong, all are reported, one per line.
func (c Config) Validate() error {
	var errs []error
	for _, k := range keys {
		if k.check == nil {
			continue
		}
		if problem := k.check(&c); problem != "" {
			errs = append(errs, c.valueError(k, showValue(k, format(k.ptr(&c))), problem))
		}
	}
	return errors.Join(errs...)
}

func (c Config) valueError(k key, shown, problem string) error {
	return valueError(k.name, shown, problem, c.Source(k.name))
}

// valueError formats the one shape of error a bad value gets:
// config: KEY VALUE PROBLEM (from SOURCE). A default has no source shown.
func valueError(name, shown, problem, src string) error {
	from := ""
	if src != "" && src != sourceDefault {
		from = " (from " + src + ")"
	}
	return fmt.Errorf("config: %s %s %s%s", name, shown, problem, from)
}

// Source names where the value of key name came from: "default", the config
// file's path, an environment variable or a flag such as "--http". It is ""
// for a Config not built by Load.
func (c Config) Source(name string) string {
	if c.origin == nil {
		return ""
	}
	return c.origin.sources[name]
}

// File returns the path of the config file that was read, or "" if none.
func (c Config) File() string {
	if c.origin == nil {
		return ""
	}
	return c.origin.file
}

// MigrationsPath returns the directory of migration files.
func (c Config) MigrationsPath() string {
	if c.MigrationsDir != "" {
		return c.MigrationsDir
	}
	return filepath.Join(c.Dir, "migrations")
}

// Engine returns "postgres" when DB is a PostgreSQL URL and "sqlite" otherwise.
func (c Config) Engine() string {
	if isPostgresURL(c.DB) {
		return "postgres"
	}
	return "sqlite"
}

// SQLitePath returns the path of the SQLite database file: Dir/data.db by
// default, the path of a sqlite: URL, or DB itself when it is a plain path.
// It returns "" when the engine is PostgreSQL.
func (c Config) SQLitePath() string {
	switch {
	case c.DB == "":
		return filepath.Join(c.Dir, "data.db")
	case isPostgresURL(c.DB):
		return ""
	case strings.HasPrefix(c.DB, "sqlite://"):
		return strings.TrimPrefix(c.DB, "sqlite://")
	case strings.HasPrefix(c.DB, "sqlite:"):
		return strings.TrimPrefix(c.DB, "sqlite:")
	}
	return c.DB
}

// DBReplicaURLs returns db_replicas as a list.
func (c Config) DBReplicaURLs() []string {
	var out []string
	for _, u := range strings.Split(c.DBReplicas, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Redacted returns every key with its value and source, for display:
// key -> {"value": ..., "source": ...}. Durations are strings such as "10s";
// the password in the database URL is replaced by "xxxxx". The entry
// "config" names the config file read ("" if none) and what named it.
func (c Config) Redacted() map[string]any {
	out := make(map[string]any, len(keys)+1)
	for _, k := range keys {
		var v any
		switch p := k.ptr(&c).(type) {
		case *string:
			v = *p
			if k.secretURL {
				v = RedactURL(*p)
			}
		case *time.Duration:
			v = formatDuration(*p)
		case *int64:
			v = *p
		case *int:
			v = *p
		case *bool:
			v = *p
		}
		out[k.name] = map[string]any{"value": v, "source": orDefault(c.Source(k.name))}
	}
	var fileSource string
	if c.origin != nil {
		fileSource = c.origin.fileSource
	}
	out["config"] = map[string]any{"value": c.File(), "source": orDefault(fileSource)}
	return out
}

func orDefault(src string) string {
	if src == "" {
		return sourceDefault
	}
	return src
}
