package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// Read-your-writes over asynchronous replicas. A write on the primary
// commits at a WAL position (an LSN); a replica shows the write once it has
// replayed WAL up to that position. A context may carry a session: each
// Write made with it raises the session's LSN to the primary's WAL position
// right after the commit, and each read made with it goes to a replica only
// if that replica is known to have replayed that far, else to the primary.
// Across requests the LSN travels as a consistency token (ConsistencyHeader):
// the response of a write carries it and the client sends it back.

// LSN is a position in PostgreSQL's write-ahead log.
type LSN uint64

// String formats l as PostgreSQL does: two hexadecimal halves, "16/B374D848".
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// ParseLSN parses PostgreSQL's text form of an LSN, "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("store: %q is not an LSN", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("store: %q is not an LSN", s)
	}
	return LSN(h<<32 | l), nil
}

// lsnUnknown stands for "some write whose position is unknown": reads that
// must see it go to the primary.
const lsnUnknown = ^LSN(0)

// ConsistencyHeader is the HTTP header that carries a consistency token:
// set on the response of a request that wrote, sent back by the client on
// the requests that must see that write.
const ConsistencyHeader = "Strata-Consistency-Token"

type sessionKey struct{}

// session is the consistency state of one context: the WAL position its
// reads must see.
type session struct {
	lsn   atomic.Uint64
	wrote atomic.Bool
}

func (s *session) raise(l LSN) {
	for {
		cur := s.lsn.Load()
		if uint64(l) <= cur || s.lsn.CompareAndSwap(cur, uint64(l)) {
			return
		}
	}
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// WithSession returns ctx with a read-your-writes session, or ctx itself
// when it has one: a Write made with the returned context (or one derived
// from it) is seen by every later read made with it, on replicas or not.
// Without a session, reads may go to a replica that has not replayed the
// caller's latest write yet.
func WithSession(ctx context.Context) context.Context {
	if sessionFrom(ctx) != nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey{}, &session{})
}

// WithMinLSN returns ctx with a session (see WithSession) whose reads see
// at least every write committed before the primary reached lsn.
func WithMinLSN(ctx context.Context, lsn LSN) context.Context {
	ctx = WithSession(ctx)
	sessionFrom(ctx).raise(lsn)
	return ctx
}

// LastLSN returns the WAL position the reads of ctx's session must see: the
// highest of its writes' commit positions and of the positions given to
// WithMinLSN; 0 without a session or when nothing raised it. Writes record
// their position only on a PostgreSQL database with replicas.
func LastLSN(ctx context.Context) LSN {
	if s := sessionFrom(ctx); s != nil {
		return LSN(s.lsn.Load())
	}
	return 0
}

// Wrote reports whether a Write committed with ctx's session.
func Wrote(ctx context.Context) bool {
	s := sessionFrom(ctx)
	return s != nil && s.wrote.Load()
}

// ConsistencyToken returns the token to hand a client after its request,
// the text form of LastLSN; "" when there is nothing to wait for.
func ConsistencyToken(ctx context.Context) string {
	l := LastLSN(ctx)
	if l == 0 {
		return ""
	}
	return l.String()
}

// WithConsistencyToken returns ctx with a session whose reads see what the
// token, from ConsistencyToken, stands for. An empty or malformed token
// gives a session with nothing to wait for: a client cannot cause an error
// with it, only lose read-your-writes.
func WithConsistencyToken(ctx context.Context, token string) context.Context {
	ctx = WithSession(ctx)
	if token == "" {
		return ctx
	}
	if l, err := ParseLSN(strings.TrimSpace(token)); err == nil {
		sessionFrom(ctx).raise(l)
	}
	return ctx
}

type primaryKey struct{}

// ReadPrimary returns ctx whose reads through DB.Reader go to the primary:
// for reads whose result decides a write (what is applied, what was already
// done), which must not see the past.
func ReadPrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryKey{}, true)
}

func readsPrimary(ctx context.Context) bool {
	b, _ := ctx.Value(primaryKey{}).(bool)
	return b
}

// noteCommit raises the session of ctx, if any, to the primary's WAL
// position after a commit. The insert position is read, not the write
// position: with synchronous_commit off the commit record may not be
// written yet, but it is always inserted, so a replica that replayed up to
// the insert position shows the commit. The extra round trip is paid only
// with replicas and a session.
func (db *DB) noteCommit(ctx context.Context) {
	s := sessionFrom(ctx)
	if s == nil {
		return
	}
	s.wrote.Store(true)
	if db.replicas == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaPollTimeout)
	defer cancel()
	var text string
	l := lsnUnknown
	if err := db.writer.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&text); err == nil {
		if p, err := ParseLSN(text); err == nil {
			l = p
		}
	}
	s.raise(l)
}
