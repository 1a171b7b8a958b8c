package backup

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is told how far long work has come. Start begins a phase of
// total bytes (total < 0 when unknown), Set reports the bytes done so far
// and Done ends the phase. Calls come from one goroutine at a time.
type Progress interface {
	Start(phase string, total int64)
	Set(done int64)
	Done()
}

// Discard is a Progress that reports nothing.
var Discard Progress = discard{}

type discard struct{}

func (discard) Start(string, int64) {}
func (discard) Set(int64)           {}
func (discard) Done()               {}

// NewProgress returns a Progress writing to w: a bar redrawn in place when
// w is a terminal, else a plain line such as
// "backup: 45% (12 MiB of 27 MiB)" at most once every interval.
func NewProgress(w io.Writer, terminal bool, interval time.Duration) Progress {
	if terminal {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, interval: interval, now: time.Now}
}

// barProgress draws a progress bar on a terminal.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *barProgress) Start(phase string, total int64) {
	p.Done()
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(phase),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
	)
}

func (p *barProgress) Set(done int64) {
	if p.bar != nil {
		_ = p.bar.Set64(done)
	}
}

func (p *barProgress) Done() {
	if p.bar == nil {
		return
	}
	_ = p.bar.Finish()
	fmt.Fprintln(p.w)
	p.bar = nil
}

// lineProgress writes a plain line per interval, for logs and pipes.
type lineProgress struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	phase string
	total int64
	last  time.Time
}

func (p *lineProgress) Start(phase string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.last = phase, total, p.now()
}

func (p *lineProgress) Set(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	if p.total > 0 {
		pct := min(100, done*100/p.total)
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.phase, pct, Size(done), Size(p.total))
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.phase, Size(done))
}

func (p *lineProgress) Done() {}

// Size formats a byte count in binary units: "512 B", "12 MiB", "1.5 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[exp]
	if v >= 10 {
		return fmt.Sprintf("%.0f %s", v, suffix)
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// countingReader reports the bytes read through it to a Progress.
type countingReader struct {
	r    io.Reader
	n    int64
	base int64
	p    Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.Set(c.base + c.n)
	return n, err
}
