package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a destination the test reads while lines are flushed.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestLogWriterBatches(t *testing.T) {
	dst := &lockedBuffer{}
	lw := NewLogWriter(dst)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				line := []byte(fmt.Sprintf("g%d line %d\n", g, i))
				lw.Write(line)
				copy(line, "XXXX") // the writer kept its own copy
			}
		})
	}
	wg.Wait()
	if s, _ := dst.String(); s != "" {
		t.Fatalf("lines written before the interval: %q", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, writes := dst.String()
		if strings.Count(s, "\n") == 400 {
			if writes != 1 {
				t.Errorf("400 short lines took %d writes, want 1", writes)
			}
			for g := range 4 {
				for i := range 100 {
					if !strings.Contains(s, fmt.Sprintf("g%d line %d\n", g, i)) {
						t.Fatalf("line g%d %d lost or torn", g, i)
					}
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines not flushed after the interval: %d of 400", strings.Count(s, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogWriterFullBufferAndClose(t *testing.T) {
	dst := &lockedBuffer{}
	lw := NewLogWriter(dst)
	big := bytes.Repeat([]byte("x"), LogBufferSize)
	lw.Write(big)
	if s, _ := dst.String(); len(s) != LogBufferSize {
		t.Errorf("a full buffer was not written at once: %d bytes", len(s))
	}
	lw.Write([]byte("last\n"))
	lw.Close()
	if s, _ := dst.String(); !strings.HasSuffix(s, "last\n") {
		t.Errorf("Close did not write the waiting line")
	}
	lw.Write([]byte("after\n"))
	if s, writes := dst.String(); !strings.HasSuffix(s, "after\n") || writes != 3 {
		t.Errorf("a line after Close: %d writes, ends %q", writes, s[len(s)-10:])
	}
}
