package config

import (
	"strings"
	"testing"
)

// FuzzLoadFile feeds arbitrary bytes as the config file: loading never
// panics, and either yields a Config that validates or a config: error.
func FuzzLoadFile(f *testing.F) {
	for _, seed := range []string{
		"",
		"http = \":8090\"\nlog_level = \"debug\"\n",
		"db = \"postgres://u:p@h/db\"\nmax_body_bytes = 1024\nautomigrate = false\n",
		"shutdown_timeout = \"30s\"\ntoken_ttl = \"1h\"\nsqlite_readers = 8\n",
		"[server]\nhttp = \":1\"\n",
		"http = 127.0.0.1:8090\n",
		"a.b.c = 1\n[[x]]\ny = 2\n",
		"sqlite_readers = 9223372036854775807\n",
		"idempotency_ttl = 1979-05-27T07:32:00Z\n",
		"db = \"\"\"\nsqlite:x.db\"\"\"\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := build("fuzz.toml", "--config", data, nil, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without the config: prefix: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded a Config that does not validate: %v", err)
		}
		_ = c.Redacted()
		_ = c.SQLitePath()
	})
}
