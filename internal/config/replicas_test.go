package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDBReplicas(t *testing.T) {
	const db = "STRATA_DB_URL=postgres://app:pw@db/app"
	tests := []struct {
		name string
		env  []string
		want string // an error fragment; "" for none
	}{
		{name: "none", env: []string{db}},
		{name: "two", env: []string{db, "STRATA_DB_REPLICAS= postgres://app:pw@r1/app , postgresql://r2/app?password=pw"}},
		{name: "sqlite primary", env: []string{"STRATA_DB_REPLICAS=postgres://r1/app"}, want: "needs a PostgreSQL db"},
		{name: "not postgres", env: []string{db, "STRATA_DB_REPLICAS=postgres://r1/app,mysql://r2/app"}, want: "entry 2 that is not a postgres://"},
		{name: "no host", env: []string{db, "STRATA_DB_REPLICAS=postgres:///app"}, want: "entry 1 that has no host"},
		{name: "zero lag", env: []string{db, "STRATA_REPLICA_MAX_LAG=0s"}, want: "replica_max_lag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := load(t, "", tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.ReplicaMaxLag != 5*time.Second {
					t.Errorf("ReplicaMaxLag = %s, want the default 5s", c.ReplicaMaxLag)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

func TestDBReplicaURLs(t *testing.T) {
	c := Config{DBReplicas: " postgres://a/x ,, postgres://b/x,"}
	got := c.DBReplicaURLs()
	if len(got) != 2 || got[0] != "postgres://a/x" || got[1] != "postgres://b/x" {
		t.Errorf("DBReplicaURLs() = %q", got)
	}
	if (Config{}).DBReplicaURLs() != nil {
		t.Error("no replicas gives a list")
	}
	c.DBReplicas = "postgres://u:secret@a/x?sslmode=disable,postgres://u:secret@b/x"
	if v := c.Redacted()["db_replicas"].(map[string]any)["value"].(string); strings.Contains(v, "secret") {
		t.Errorf("Redacted db_replicas = %q", v)
	}
}
