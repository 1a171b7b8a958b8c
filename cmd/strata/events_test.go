package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/broker"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/outbox"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// strataProcess is a strata serve process the test may kill.
type strataProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs bytes.Buffer
}

func startServe(t *testing.T, bin string, env []string, args ...string) *strataProcess {
	t.Helper()
	p := &strataProcess{t: t, cmd: exec.Command(bin, append([]string{"serve"}, args...)...)}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func waitReady(t *testing.T, base string, p *strataProcess) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 20s; logs:\n%s", p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKillDuringWritesLosesNoEvent writes records through the API while
// the process is killed with SIGKILL, restarts it on the same data, and
// checks, through the embedded NATS server's client port, that every write
// the API acknowledged has its event in the broker.
func TestKillDuringWritesLosesNoEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, data, env := binaryWithSuperuser(t)
	addr, natsAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	args := []string{"--http", addr, "--dir", data, "--nats-listen", natsAddr, "--log-format", "json"}
	p := startServe(t, bin, env, args...)
	waitReady(t, base, p)

	call := func(method, path, token, body string) (*http.Response, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return http.DefaultClient.Do(req)
	}
	resp, err := call("POST", "/api/v1/admin/login", "", `{"email":"admin@example.com","password":"a long enough password"}`)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp, err = call("POST", "/api/v1/collections", tok.AccessToken, `{"name":"posts","fields":[{"name":"title","type":"text"}]}`); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create collection: %v %v", err, resp)
	}
	resp.Body.Close()

	// Writers record every record the API acknowledged, until the kill.
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := call("POST", "/api/v1/collections/posts/records", tok.AccessToken, fmt.Sprintf(`{"title":"w%d-%d"}`, w, i))
				if err != nil {
					return // the process is gone
				}
				var rec struct{ ID string }
				json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					acked[rec.ID] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}

	p = startServe(t, bin, env, args...)
	waitReady(t, base, p)
	b, err := natsbroker.New(context.Background(), natsbroker.Config{URL: "nats://" + natsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var smu sync.Mutex
	seen := map[string]bool{}
	sub, err := b.Subscribe(context.Background(), broker.Subscription{Topics: []string{"records.posts"}, From: broker.Beginning()},
		func(_ context.Context, d broker.Delivery) error {
			var ev outbox.Event
			if err := json.Unmarshal(d.Data, &ev); err != nil {
				return err
			}
			smu.Lock()
			seen[ev.RecordID] = true
			smu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		smu.Lock()
		missing := 0
		for id := range acked {
			if !seen[id] {
				missing++
			}
		}
		smu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged writes have no event after the restart; logs:\n%s", missing, len(acked), p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d acknowledged writes before SIGKILL, every one with its event", len(acked))
}
