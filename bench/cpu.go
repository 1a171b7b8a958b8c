package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A run is only as good as the quiet of the machine: cpuMeter measures how
// much CPU time went elsewhere than to the benchmark, the target and its
// PostgreSQL while a scenario ran (other programs, and kernel threads such
// as those writing back dirty pages), so that a disturbed result shows.

// clockTicks is USER_HZ, the unit of the times in /proc; 100 on Linux.
const clockTicks = 100

// cpuMeter tells the CPU time of the whole machine from the CPU time of the
// processes under test.
type cpuMeter struct {
	ours []int // the benchmark, the target, PostgreSQL's postmaster
	db   int   // PostgreSQL's postmaster when the benchmark started it; 0 if not
}

// sample is what a cpuMeter read at one moment, in clock ticks.
type sample struct{ busy, ours int64 }

// read samples the busy time of every CPU (all but idle and iowait; steal
// counts as busy) and the time of our processes and their children.
func (m cpuMeter) read() (sample, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sample{}, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return sample{}, false
	}
	var s sample
	for i, v := range f[1:9] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	s.ours = m.oursTicks()
	return s, true
}

// oursTicks sums user and system time of our processes and their
// descendants that are alive now.
func (m cpuMeter) oursTicks() int64 { return treeTicks(m.ours) }

// treeTicks sums user and system time of the processes roots and their
// descendants that are alive now, in clock ticks.
func treeTicks(roots []int) int64 {
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid, utime + stime}
	}
	isOurs := func(pid int) bool {
		for depth := 0; pid > 1 && depth < 64; depth++ {
			for _, o := range roots {
				if pid == o {
					return true
				}
			}
			pid = procs[pid].ppid
		}
		return false
	}
	var sum int64
	for pid, p := range procs {
		if isOurs(pid) {
			sum += p.ticks
		}
	}
	return sum
}

// otherCores is how many cores, on average, went to other processes
// between two samples taken seconds apart.
func otherCores(a, b sample, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	other := float64((b.busy-a.busy)-(b.ours-a.ours)) / clockTicks / seconds
	return max(other, 0)
}

// postmasterPID reads the pid of a PostgreSQL server from its data
// directory; 0 when there is none.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}
