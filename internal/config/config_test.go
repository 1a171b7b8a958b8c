package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateWithoutSource(t *testing.T) {
	c := Default()
	c.LogLevel = "verbose"
	c.SQLiteReaders = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	want := `config: log_level "verbose" is not one of debug, info, warn, error` + "\n" +
		`config: sqlite_readers 0 is not between 1 and 64`
	if err.Error() != want {
		t.Errorf("error:\n got  %s\n want %s", err, want)
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
	}{
		{"http any interface", func(c *Config) { c.HTTP = ":8090" }},
		{"http port 0", func(c *Config) { c.HTTP = "127.0.0.1:0" }},
		{"http IPv6", func(c *Config) { c.HTTP = "[::1]:8090" }},
		{"http host name", func(c *Config) { c.HTTP = "localhost:8090" }},
		{"db postgres", func(c *Config) { c.DB = "postgres://u:p@localhost:5432/db?sslmode=disable" }},
		{"db postgresql", func(c *Config) { c.DB = "postgresql://localhost/db" }},
		{"db postgres unix socket", func(c *Config) { c.DB = "postgres:///db?host=/var/run/postgresql" }},
		{"db sqlite absolute", func(c *Config) { c.DB = "sqlite:///var/lib/strata/x.db" }},
		{"db sqlite relative", func(c *Config) { c.DB = "sqlite:x.db" }},
		{"db file path", func(c *Config) { c.DB = "/var/lib/x.db" }},
		{"db relative file path", func(c *Config) { c.DB = "data/x.db" }},
		{"postgres_max_conns bounds", func(c *Config) { c.PostgresMaxConns = 1000 }},
		{"sqlite_readers bounds", func(c *Config) { c.SQLiteReaders = 64 }},
		{"durations", func(c *Config) { c.TokenTTL, c.ShutdownTimeout = time.Nanosecond, 48*time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDerived(t *testing.T) {
	tests := []struct {
		db, dir, migrations    string
		engine, sqlite, migDir string
	}{
		{db: "", dir: "data", engine: "sqlite", sqlite: filepath.Join("data", "data.db"), migDir: filepath.Join("data", "migrations")},
		{db: "postgres://localhost/x", dir: "data", migrations: "/m", engine: "postgres", sqlite: "", migDir: "/m"},
		{db: "postgresql://localhost/x", dir: "d", engine: "postgres", sqlite: "", migDir: filepath.Join("d", "migrations")},
		{db: "sqlite:///abs/path.db", dir: "d", engine: "sqlite", sqlite: "/abs/path.db", migDir: filepath.Join("d", "migrations")},
		{db: "sqlite:rel.db", dir: "d", engine: "sqlite", sqlite: "rel.db", migDir: filepath.Join("d", "migrations")},
		{db: "/srv/x.db", dir: "d", engine: "sqlite", sqlite: "/srv/x.db", migDir: filepath.Join("d", "migrations")},
	}
	for _, tt := range tests {
		c := Config{DB: tt.db, Dir: tt.dir, MigrationsDir: tt.migrations}
		if got := c.Engine(); got != tt.engine {
			t.Errorf("db %q: Engine() = %q, want %q", tt.db, got, tt.engine)
		}
		if got := c.SQLitePath(); got != tt.sqlite {
			t.Errorf("db %q: SQLitePath() = %q, want %q", tt.db, got, tt.sqlite)
		}
		if got := c.MigrationsPath(); got != tt.migDir {
			t.Errorf("db %q: MigrationsPath() = %q, want %q", tt.db, got, tt.migDir)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Chdir(t.TempDir())
	c, _, err := load(t, "", []string{"STRATA_DB_URL=postgres://app:s3cret@db:5432/app?sslmode=disable"},
		"--shutdown-timeout", "1m")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if len(r) != len(keys)+1 {
		t.Errorf("Redacted has %d entries, want every key and config", len(r))
	}
	want := map[string][2]any{
		"db":               {"postgres://app:xxxxx@db:5432/app?sslmode=disable", "STRATA_DB_URL"},
		"shutdown_timeout": {"1m", "--shutdown-timeout"},
		"idempotency_ttl":  {"24h", "default"},
		"max_body_bytes":   {int64(10 << 20), "default"},
		"sqlite_readers":   {4, "default"},
		"automigrate":      {true, "default"},
		"config":           {"", "default"},
	}
	for name, w := range want {
		e, ok := r[name].(map[string]any)
		if !ok {
			t.Errorf("Redacted[%q] = %#v", name, r[name])
			continue
		}
		if e["value"] != w[0] || e["source"] != w[1] {
			t.Errorf("Redacted[%q] = %v from %v, want %v from %v", name, e["value"], e["source"], w[0], w[1])
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:p@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?user=u&password=p&sslmode=disable", "postgres://h/db?user=u&password=xxxxx&sslmode=disable"},
		{"postgres://u:p/with/slash@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db"},
		{"sqlite:x.db", "sqlite:x.db"},
		{"postgres://u:p@h1/db?sslmode=disable, postgres://u:p@h2/db", "postgres://u:xxxxx@h1/db?sslmode=disable, postgres://u:xxxxx@h2/db"},
		{"postgres://u:p@h1:1,h2:2/db?password=p,postgres://h3/db?password=p", "postgres://u:xxxxx@h1:1,h2:2/db?password=xxxxx,postgres://h3/db?password=xxxxx"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(RedactURL(tt.in), ":p@") {
			t.Errorf("RedactURL(%q) shows the password", tt.in)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "10s", time.Minute: "1m", time.Hour: "1h", 24 * time.Hour: "24h",
		90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 0: "0s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
