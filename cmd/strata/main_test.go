package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runCLI runs the command line in-process.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, []string{})
	return out.String(), errOut.String(), err
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"migrate"}, "migrate needs one of"},
		{[]string{"migrate", "sideways", "--dir", "/nonexistent/strata-never-created"}, "unknown migrate action"},
		{[]string{"superuser", "delete", "a@b.c"}, "superuser needs: create EMAIL"},
		{[]string{"config"}, "config needs: check"},
		{[]string{"serve", "extra"}, "serve takes no arguments"},
		{[]string{"serve", "--no-such-flag"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		_, _, err := runCLI(t, "", c.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, err := runCLI(t, "", "--help")
	if err != nil || !strings.Contains(out, "serve") || !strings.Contains(out, "migrate") {
		t.Errorf("help: %v\n%s", err, out)
	}
	for _, cmd := range []string{"serve", "migrate", "superuser", "config"} {
		_, errOut, err := runCLI(t, "", cmd, "--help")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "--dir") && !strings.Contains(errOut, "-dir") {
			t.Errorf("%s --help: %v\n%s", cmd, err, errOut)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runCLI(t, "", "config", "check", "--dir", dir, "--config", "")
	if err != nil || !strings.Contains(out, "configuration is valid") || !strings.Contains(out, dir) {
		t.Errorf("config check: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, "", "config", "check", "--log-level", "loud", "--config", "")
	if err == nil || !strings.Contains(err.Error(), "log_level") || !strings.Contains(err.Error(), "loud") {
		t.Errorf("bad log level: err = %v", err)
	}
}

func TestSuperuserAndMigrate(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--dir", dir, "--config", ""}
	_, _, err := runCLI(t, "", append([]string{"superuser", "create", "admin@example.com"}, base...)...)
	if err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("without a terminal or --password-stdin: err = %v", err)
	}
	_, _, err = runCLI(t, "short\n", append([]string{"superuser", "create", "admin@example.com", "--password-stdin"}, base...)...)
	if err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("short password: err = %v", err)
	}
	out, _, err := runCLI(t, "a long enough password\n", append([]string{"superuser", "create", "admin@example.com", "--password-stdin"}, base...)...)
	if err != nil || !strings.Contains(out, "admin@example.com") {
		t.Fatalf("superuser create: %v %s", err, out)
	}

	// A migration file dropped into the directory is pending until up.
	migs := filepath.Join(dir, "migrations")
	os.MkdirAll(migs, 0o755)
	m := `{"id":"20260101000000000000_create_notes","up":[{"op":"create","collection":{"id":"c1","name":"notes","type":"document"}}],"down":[{"op":"delete","name":"notes"}]}`
	if err := os.WriteFile(filepath.Join(migs, "20260101000000000000_create_notes.json"), []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "", append([]string{"migrate", "status"}, base...)...)
	if err != nil || !strings.Contains(out, "20260101000000000000_create_notes  pending") {
		t.Errorf("status before up: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "", append([]string{"migrate", "up"}, base...)...)
	if err != nil || !strings.Contains(out, "applied 20260101000000000000_create_notes") {
		t.Errorf("up: %v\n%s", err, out)
	}
	out, _, _ = runCLI(t, "", append([]string{"migrate", "status"}, base...)...)
	if !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Errorf("status after up:\n%s", out)
	}
	out, _, err = runCLI(t, "", append([]string{"migrate", "down"}, base...)...)
	if err != nil || !strings.Contains(out, "undid 20260101000000000000_create_notes") {
		t.Errorf("down: %v\n%s", err, out)
	}
	out, _, _ = runCLI(t, "", append([]string{"migrate", "down"}, base...)...)
	if !strings.Contains(out, "nothing to undo") {
		t.Errorf("second down: %s", out)
	}
}

// TestServeBinary builds the binary, starts it on a fresh data directory,
// signs in over HTTP and stops it with SIGTERM: it must exit 0 and leave
// the database closed cleanly (no WAL file left behind).
func TestServeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, data, env := binaryWithSuperuser(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	srv := exec.Command(bin, "serve", "--http", addr, "--dir", data)
	srv.Env = env
	srv.Stdout, srv.Stderr = &logs, &logs
	start := time.Now()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	var up time.Duration
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				up = time.Since(start)
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("not ready after 20s; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ready after %v", up)

	resp, err := http.Post("http://"+addr+"/api/v1/admin/login", "application/json",
		strings.NewReader(`{"email":"admin@example.com","password":"a long enough password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok["access_token"] == nil {
		t.Fatalf("login: %d %v", resp.StatusCode, tok)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not stop after SIGTERM; logs:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(data, "data.db-wal")); err == nil {
		t.Errorf("the WAL file is still there: the database was not closed cleanly")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", logs.String())
	}
}

func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--dir", dir, "--config", ""}
	out, _, err := runCLI(t, "", append([]string{"keys", "rotate"}, base...)...)
	if err != nil || !strings.Contains(out, "new signing key") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(files) != 1 {
		t.Errorf("keys after one rotation: %v", files)
	}
	runCLI(t, "", append([]string{"keys", "rotate"}, base...)...)
	files, _ = filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(files) != 2 {
		t.Errorf("a fresh key was deleted: %v", files)
	}
	if _, _, err := runCLI(t, "", append([]string{"keys", "spin"}, base...)...); err == nil {
		t.Errorf("keys spin accepted")
	}
}

// buildOnce builds the strata binary once for the tests that run it.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strata-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

// binaryWithSuperuser returns the built binary, a fresh data directory
// with the superuser admin@example.com ("a long enough password"), and the
// environment to run the binary in.
func binaryWithSuperuser(t *testing.T) (bin, data string, env []string) {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(t.TempDir(), "data")
	env = append(os.Environ(), "STRATA_CONFIG=")
	su := exec.Command(bin, "superuser", "create", "admin@example.com", "--password-stdin", "--dir", data)
	su.Stdin = strings.NewReader("a long enough password\n")
	su.Env = env
	if out, err := su.CombinedOutput(); err != nil {
		t.Fatalf("superuser: %v\n%s", err, out)
	}
	return bin, data, env
}
