// Package redistest connects tests to Redis: the server named by
// STRATA_TEST_REDIS_URL (started by scripts/test), isolated per test by a
// key prefix, and private redis-server processes started from the binary
// named by STRATA_TEST_REDIS_SERVER for tests that stop and restart Redis.
//
// When a variable is unset the test is skipped, except under CI (CI set to
// any value), where it fails: a CI run must not pass by skipping Redis.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Environment variables read by this package.
const (
	EnvURL    = "STRATA_TEST_REDIS_URL"
	EnvServer = "STRATA_TEST_REDIS_SERVER"
)

// require returns the value of env, skipping the test when it is unset, or
// failing it under CI.
func require(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set; run the tests with scripts/test", env)
	}
	t.Skipf("%s is not set; skipping the Redis tests (scripts/test starts a Redis)", env)
	return ""
}

// URL returns the URL of the shared test Redis.
func URL(t testing.TB) string {
	t.Helper()
	return require(t, EnvURL)
}

// Client returns a new client of the shared test Redis, closed when the
// test ends. Each call returns a distinct client, so two calls model two
// nodes of a cluster.
func Client(t testing.TB) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping test redis: %v", err)
	}
	return c
}

// Prefix returns a key prefix unique to this call. Keys under it are
// deleted when the test ends, so tests sharing one server never see each
// other's keys.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	prefix := "test:" + hex.EncodeToString(b[:]) + ":"
	if os.Getenv(EnvURL) == "" {
		return prefix
	}
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(os.Getenv(EnvURL))
		if err != nil {
			return
		}
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Unlink(ctx, keys...)
		}
	})
	return prefix
}

// Server is a private redis-server process on a loopback port.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts a private redis-server from the binary named by
// STRATA_TEST_REDIS_SERVER; it is stopped when the test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: require(t, EnvServer), dir: t.TempDir()}
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	s.port = port
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start starts the server on its port, if it is not running, and waits
// until it answers PING.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", s.dir, "--logfile", "")
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.done)

	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.cmd = nil
			s.t.Fatalf("redis-server on port %d exited at start", s.port)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer PING: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
