// Package natstest starts and stops real nats-server processes for tests
// that need a broker to go away and come back.
package natstest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables scripts/test sets after starting nats-server.
const (
	// EnvURL is a running NATS server with JetStream.
	EnvURL = "STRATA_TEST_NATS_URL"
	// EnvServer is the nats-server binary, for tests that start and stop
	// their own server.
	EnvServer = "STRATA_TEST_NATS_SERVER"
)

// Env returns the value of the variable name, or skips the test when it
// is unset; under CI it fails instead, so that these tests cannot silently
// stop running.
func Env(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s is not set; run the tests with scripts/test, which starts nats-server", name)
	}
	t.Skipf("%s is not set; scripts/test sets it after starting nats-server", name)
	return ""
}

// Server is a nats-server process with JetStream on loopback, its storage
// in a temporary directory that outlives restarts.
type Server struct {
	t         testing.TB
	bin, dir  string
	port, mon int
	mu        sync.Mutex
	cmd       *exec.Cmd
	out       bytes.Buffer
}

// Start starts the binary named by STRATA_TEST_NATS_SERVER (skipping the
// test when unset, see Env) and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Env(t, EnvServer), dir: t.TempDir(), port: FreePort(t), mon: FreePort(t)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the client URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Start starts the server again on the same port and storage, and waits
// until it reports healthy.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	s.out.Reset()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-m", strconv.Itoa(s.mon),
		"-js", "-sd", s.dir, "--server_name", "strata-test")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	err := s.cmd.Start()
	s.mu.Unlock()
	if err != nil {
		s.t.Fatalf("start %s: %v", s.bin, err)
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.mon)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(health)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("nats-server not healthy after 10s:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down gracefully and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// FreePort returns a loopback port nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
