package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	_ "modernc.org/sqlite"
)

// StorageReport is the storage ceilings: how fast the SQLite driver that
// Strata and the floor use takes rows with nothing above it.
type StorageReport struct {
	Driver string `json:"driver"`
	// OnePerTx and Batched are rows per second, the median of the rounds,
	// with one row per transaction and with BatchRows rows per transaction.
	OnePerTx       float64   `json:"one_row_per_tx_rows_per_s"`
	OnePerTxRounds []float64 `json:"one_row_per_tx_rounds"`
	Batched        float64   `json:"batched_rows_per_s"`
	BatchedRounds  []float64 `json:"batched_rounds"`
	BatchRows      int       `json:"batch_rows"`
	Synchronous    string    `json:"synchronous"`
	JournalMode    string    `json:"journal_mode"`
	RoundDuration  string    `json:"round_duration"`
}

// storageBatch is how many rows a batched transaction inserts.
const storageBatch = 100

// measureStorage inserts post rows into a fresh SQLite file in dir, with
// the pragmas Strata and the floor use, from one goroutine through one
// prepared statement: rounds of d with one row per transaction, then
// rounds with storageBatch rows per transaction.
func measureStorage(ctx context.Context, dir string, rounds int, d time.Duration) (*StorageReport, error) {
	q := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"}}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "storage.db")+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE posts (id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL,
		title TEXT NOT NULL, views REAL NOT NULL DEFAULT 0, published INTEGER NOT NULL DEFAULT 0, author TEXT, body TEXT NOT NULL DEFAULT '');
		CREATE INDEX posts_published_views ON posts (published, views)`); err != nil {
		return nil, err
	}
	rep := &StorageReport{Driver: "modernc.org/sqlite " + moduleVersion("modernc.org/sqlite"), BatchRows: storageBatch, RoundDuration: d.String()}
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&rep.JournalMode); err != nil {
		return nil, err
	}
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return nil, err
	}
	rep.Synchronous = map[int]string{0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[sync]
	ins, err := db.PrepareContext(ctx, `INSERT INTO posts (id, created, updated, title, views, published, body) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	n := 0
	insertRows := func(rows int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// One connection: the statement prepared on it serves the
		// transaction without preparing again.
		stmt := tx.StmtContext(ctx, ins)
		now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		for range rows {
			n++
			if _, err := stmt.ExecContext(ctx, "p"+strconv.Itoa(n), now, now, "Bench post "+strconv.Itoa(n), n%1000, n%2,
				"a body of a few words, as the benchmark's posts have"); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	measure := func(rows int) ([]float64, error) {
		var out []float64
		for range rounds {
			began, done := time.Now(), 0
			for time.Since(began) < d {
				if err := insertRows(rows); err != nil {
					return nil, fmt.Errorf("insert %d rows a transaction: %w", rows, err)
				}
				done += rows
			}
			out = append(out, float64(done)/time.Since(began).Seconds())
		}
		return out, nil
	}
	if rep.OnePerTxRounds, err = measure(1); err != nil {
		return nil, err
	}
	if rep.BatchedRounds, err = measure(storageBatch); err != nil {
		return nil, err
	}
	rep.OnePerTx, rep.Batched = median(rep.OnePerTxRounds), median(rep.BatchedRounds)
	return rep, nil
}

// moduleVersion is the version of a module built into this program.
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		if v, ok := depVersions(info)[path]; ok {
			return v
		}
	}
	return "(unknown version)"
}
