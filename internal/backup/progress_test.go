package backup

import (
	"bytes"
	"testing"
	"time"
)

// TestLineProgress: plain progress writes at most one line per interval,
// with the percentage and sizes.
func TestLineProgress(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	p := NewProgress(&buf, false, time.Second).(*lineProgress)
	p.now = func() time.Time { return clock }
	p.Start("backup: write", 27<<20)
	p.Set(1 << 20) // within the first second: no line
	clock = clock.Add(1100 * time.Millisecond)
	p.Set(12 << 20)
	clock = clock.Add(500 * time.Millisecond)
	p.Set(20 << 20) // half a second later: no line
	clock = clock.Add(600 * time.Millisecond)
	p.Set(27 << 20)
	p.Done()
	p.Start("backup: dump", -1)
	clock = clock.Add(2 * time.Second)
	p.Set(5 << 10)
	want := "backup: write: 44% (12 MiB of 27 MiB)\nbackup: write: 100% (27 MiB of 27 MiB)\nbackup: dump: 5.0 KiB\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 12 << 20: "12 MiB", 3 << 30: "3.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
