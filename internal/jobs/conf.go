package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxQueueWorkers bounds the workers of one queue in ParseQueues.
const MaxQueueWorkers = 1000

// ParseQueues parses a list of queues and their workers, as the
// job_queues setting writes it: "default=4, emails=2, reports=1". Entries
// are separated by commas; blanks around names, "=" and counts are
// ignored. A queue name is 1 to 128 letters, digits and _.:- starting with
// a letter or digit; a count is a whole number from 1 to MaxQueueWorkers,
// or 0 for a queue this node does not work (only useful for "default",
// which a node otherwise works with its job_workers). Each queue is
// named at most once. A blank string gives an empty map.
func ParseQueues(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("entry %d is empty; write name=workers entries separated by commas, as in \"default=4, emails=2\"", i+1)
		}
		name, count, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %q has no \"=\" between the queue and its workers, as in \"emails=2\"", entry)
		}
		name, count = strings.TrimSpace(name), strings.TrimSpace(count)
		if !validName(name) {
			return nil, fmt.Errorf("queue name %q is not 1 to 128 letters, digits and _.:- starting with a letter or digit", name)
		}
		n, err := strconv.Atoi(count)
		if err != nil {
			return nil, fmt.Errorf("queue %s has workers %q, which is not a whole number", name, count)
		}
		if n < 0 || n > MaxQueueWorkers {
			return nil, fmt.Errorf("queue %s has %d workers, not a number from 0 to %d", name, n, MaxQueueWorkers)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("queue %s is named twice", name)
		}
		out[name] = n
	}
	return out, nil
}

// CronEntry is one schedule of a cron table; see ParseCron.
type CronEntry struct {
	Name string
	Spec string
	Kind string
}

// ParseCron parses a cron table, as the cron setting writes it: entries
// separated by ";" or new lines, each "name: spec kind", as in
//
//	nightly-report: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run
//
// The name runs up to the first ":" (so it cannot hold one here) and
// follows the rules of schedule names; the kind is the last word; the spec
// between them is any schedule ParseSpec takes. Names are unique. Jobs are
// enqueued with empty arguments ({}). Blank entries are skipped; a blank
// string gives no entries.
func ParseCron(s string) ([]CronEntry, error) {
	var out []CronEntry
	seen := map[string]bool{}
	for raw := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("entry %q has no \":\" after its name; write \"name: spec kind\", as in \"cleanup: @every 1h cleanup.run\"", entry)
		}
		name = strings.TrimSpace(name)
		if !validName(name) {
			return nil, fmt.Errorf("schedule name %q is not 1 to 128 letters, digits and _.- starting with a letter or digit", name)
		}
		words := strings.Fields(rest)
		if len(words) < 2 {
			return nil, fmt.Errorf("schedule %s needs a spec and a job kind after its name, as in \"%s: @daily report.daily\"", name, name)
		}
		kind := words[len(words)-1]
		spec := strings.Join(words[:len(words)-1], " ")
		if _, err := ParseSpec(strings.Join(words, " ")); err == nil {
			return nil, fmt.Errorf("schedule %s: the job kind is missing after the spec %q", name, strings.Join(words, " "))
		}
		if !validName(kind) {
			return nil, fmt.Errorf("schedule %s: job kind %q is not 1 to 128 letters, digits and _.:- starting with a letter or digit", name, kind)
		}
		if _, err := ParseSpec(spec); err != nil {
			return nil, fmt.Errorf("schedule %s: %v", name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("schedule %s is named twice", name)
		}
		seen[name] = true
		out = append(out, CronEntry{Name: name, Spec: spec, Kind: kind})
	}
	return out, nil
}
