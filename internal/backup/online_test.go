package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// installation is a data directory with its database, as a server has it.
type installation struct {
	engine string
	layout Layout
	url    string // postgres
	db     *store.DB
	recs   *records.Service
	signer *auth.Signer
}

func (in *installation) params() store.Params {
	if in.engine != "sqlite" {
		return store.Params{Engine: "postgres", URL: in.url}
	}
	return store.Params{Engine: "sqlite", Path: in.layout.DBPath, Readers: 4}
}

// open opens the installation's database, signer and records service,
// closed when the test ends.
func (in *installation) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, in.params())
	if err != nil {
		t.Fatalf("open %s: %v", in.engine, err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := auth.LoadSigner(in.layout.Dir)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := records.New(ctx, records.Options{DB: db, Secret: signer.Secret("cursor"), MigrationsDir: in.layout.MigrationsDir})
	if err != nil {
		t.Fatal(err)
	}
	in.db, in.recs, in.signer = db, recs, signer
}

// raw opens a plain database/sql handle on the installation's database.
func (in *installation) raw(t *testing.T) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if in.engine != "sqlite" {
		db, err = sql.Open("pgx", in.url)
	} else {
		db, err = sql.Open("sqlite", "file:"+in.layout.DBPath+"?mode=ro")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newInstallation returns an installation of engine with nothing in it.
func newInstallation(t *testing.T, engine string) *installation {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	in := &installation{engine: engine, layout: Layout{Dir: dir, DBPath: filepath.Join(dir, "data.db"), MigrationsDir: filepath.Join(dir, "migrations")}}
	switch engine {
	case "postgres":
		in.url = createDatabase(t)
	case "postgres-schema":
		// Strata in a schema of its own, named by search_path, made empty
		// beforehand as an operator would.
		in.url = createDatabase(t)
		db, err := sql.Open("pgx", in.url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE SCHEMA app"); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(in.url)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", "app")
		u.RawQuery = q.Encode()
		in.url = u.String()
	}
	return in
}

// createDatabase creates a database on the test PostgreSQL server, dropped
// when the test ends, and returns its URL.
func createDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv(storetest.EnvPostgres)
	var b [6]byte
	rand.Read(b[:])
	name := "strata_backup_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// engines lists the engines to test: sqlite, and postgres when a server is
// configured and pg_dump is installed. Under CI a server without pg_dump
// fails the test, as a missing server does.
func engines(t *testing.T) []string {
	t.Helper()
	list := storetest.Engines(t)
	if slices.Contains(list, "postgres") {
		for _, tool := range []string{"pg_dump", "pg_restore"} {
			if _, err := exec.LookPath(tool); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is set but %s is not installed; scripts/test installs the postgresql package", storetest.EnvPostgres, tool)
				}
				t.Logf("%s is not installed: skipping postgres", tool)
				return []string{"sqlite"}
			}
		}
	}
	if slices.Contains(list, "postgres") {
		list = append(list, "postgres-schema")
	}
	return list
}

func noteBody(title string) map[string]json.RawMessage {
	t, _ := json.Marshal(title)
	return map[string]json.RawMessage{
		"title": t,
		"body":  json.RawMessage(strconv.Quote(strings.Repeat("lorem ipsum ", 150))),
		"meta":  json.RawMessage(`{"lang":"en","tags":["a","b"]}`),
	}
}

// TestBackupRestoreOnline backs up an installation while writers keep
// inserting, restores it into an empty one and checks that the restored
// data is a consistent snapshot: every table but the one written to is
// identical; the written one holds, for each writer, exactly its first k
// records, at least those acknowledged before the backup began, each
// identical to the source's; and the keys verify tokens signed before.
func TestBackupRestoreOnline(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) { testOnline(t, engine) })
	}
}

func testOnline(t *testing.T, variant string) {
	ctx := context.Background()
	engine := strings.TrimSuffix(variant, "-schema")
	src := newInstallation(t, variant)
	src.open(t)
	if _, err := src.recs.CreateCollection(ctx, &schema.Collection{Name: "notes", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true},
		{Name: "body", Type: schema.Text},
		{Name: "meta", Type: schema.JSON},
	}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := src.db.Write(ctx, func(tx *store.Tx) error {
		return store.PutSuperuser(ctx, tx, &store.Superuser{ID: records.NewID(), Email: "admin@example.com", PasswordHash: "x", Created: now, Updated: now})
	}); err != nil {
		t.Fatal(err)
	}
	token, err := src.signer.Issue(auth.Principal{ID: "admin", Role: auth.RoleSuperuser}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Preload, then keep writers inserting through the backup.
	const preload, writers = 2000, 4
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < preload; i += 8 {
				if _, err := src.recs.Create(ctx, "notes", noteBody(fmt.Sprintf("p-%d", i)), records.WriteOptions{}); err != nil {
					t.Errorf("preload: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	var acked [writers]atomic.Int64
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := src.recs.Create(ctx, "notes", noteBody(fmt.Sprintf("w%d-%d", w, seq)), records.WriteOptions{}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				acked[w].Store(int64(seq + 1))
			}
		})
	}
	for w := range writers {
		for acked[w].Load() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	var before [writers]int64
	var sumBefore, sumAfter int64
	for w := range writers {
		before[w] = acked[w].Load()
		sumBefore += before[w]
	}
	archive := filepath.Join(t.TempDir(), "strata.tar.gz")
	res, err := WriteFile(ctx, archive, false, Options{
		Engine: engine, DBPath: src.layout.DBPath, PostgresURL: src.url, Dir: src.layout.Dir,
		MigrationsDir: src.layout.MigrationsDir, StrataVersion: "test", Environ: os.Environ(),
	})
	for w := range writers {
		sumAfter += acked[w].Load()
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Logf("backup of %d records: %s archive (%s of data) in %v; %d writes acknowledged meanwhile",
		preload+int(sumBefore), Size(res.Size), Size(res.Manifest.DataSize()), res.Duration, sumAfter-sumBefore)
	if sumAfter == sumBefore {
		t.Errorf("no write was acknowledged while the backup ran: it blocked the writers")
	}

	dst := newInstallation(t, variant)
	rres, err := Restore(ctx, RestoreOptions{Archive: archive, Engine: engine, PostgresURL: dst.url, Layout: dst.layout, Environ: os.Environ()})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore in %v", rres.Duration)

	compareTables(t, dumpTables(t, src.raw(t), engine), dumpTables(t, dst.raw(t), engine), preload, before[:])

	// The restored installation opens and serves the records.
	dst.open(t)
	page, err := dst.recs.List(ctx, "notes", records.ListParams{Filter: `title = "p-7"`})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("list on the restored installation: %v, %+v", err, page)
	}
	orig, err := src.recs.Get(ctx, "notes", page.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := orig.MarshalJSON()
	b, _ := page.Items[0].MarshalJSON()
	if !bytes.Equal(a, b) {
		t.Errorf("record p-7:\nsource   %s\nrestored %s", a, b)
	}
	if _, err := dst.signer.Verify(token, time.Now()); err != nil {
		t.Errorf("a token signed before the backup does not verify after restore: %v", err)
	}
	if !bytes.Equal(dst.signer.Secret("cursor"), src.signer.Secret("cursor")) {
		t.Errorf("the restored secret differs: cursors would break")
	}
	if engine == "postgres" {
		// A second restore into the now used database is refused and
		// leaves its empty data directory empty.
		fresh := newInstallation(t, "sqlite")
		_, err := Restore(ctx, RestoreOptions{Archive: archive, Engine: engine, PostgresURL: dst.url, Layout: fresh.layout, Environ: os.Environ()})
		if err == nil || !strings.Contains(err.Error(), "already holds strata tables") || !strings.Contains(err.Error(), "_collections") {
			t.Errorf("restore into a used database: err = %v", err)
		}
		if _, err := os.Stat(fresh.layout.Dir); !os.IsNotExist(err) {
			t.Errorf("the refused restore left %s behind", fresh.layout.Dir)
		}
	}
	for _, dir := range []string{"keys", "migrations"} {
		want, got := readTree(t, filepath.Join(src.layout.Dir, dir)), readTree(t, filepath.Join(dst.layout.Dir, dir))
		if len(want) == 0 || !maps.Equal(want, got) {
			t.Errorf("%s: restored %d files, want the source's %d, byte for byte", dir, len(got), len(want))
		}
	}
}

// readTree returns the files of dir, name to contents.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// row is one row as text, column=value joined by tabs, and its title
// column when it has one.
type row struct {
	id, title, text string
}

// dumpTables reads every row of every table of the database.
func dumpTables(t *testing.T, db *sql.DB, engine string) map[string][]row {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if engine == "postgres" {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`
	}
	names := queryStrings(t, db, q)
	out := make(map[string][]row, len(names))
	for _, name := range names {
		rows, err := db.Query(`SELECT * FROM "` + name + `"`)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		cols, all, err := storetest.ScanAll(rows)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		for _, vals := range all {
			var r row
			parts := make([]string, len(cols))
			for i, c := range cols {
				v := vals[i]
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if tm, ok := v.(time.Time); ok {
					v = tm.UTC().Format(time.RFC3339Nano)
				}
				parts[i] = fmt.Sprintf("%s=%v", c, v)
				switch c {
				case "id":
					r.id = fmt.Sprint(v)
				case "title":
					r.title = fmt.Sprint(v)
				}
			}
			r.text = strings.Join(parts, "\t")
			out[name] = append(out[name], r)
		}
		slices.SortFunc(out[name], func(a, b row) int { return strings.Compare(a.text, b.text) })
	}
	return out
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// compareTables checks that restored is a consistent snapshot of src: see
// TestBackupRestoreOnline.
func compareTables(t *testing.T, src, restored map[string][]row, preload int, before []int64) {
	t.Helper()
	names := func(m map[string][]row) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if a, b := names(src), names(restored); !slices.Equal(a, b) {
		t.Fatalf("tables:\nsource   %v\nrestored %v", a, b)
	}
	if len(src["_collections"]) != 1 || len(src["_superusers"]) != 1 || len(src["_migrations"]) != 1 {
		t.Fatalf("the source lacks its system rows: %d collections, %d superusers, %d migrations",
			len(src["_collections"]), len(src["_superusers"]), len(src["_migrations"]))
	}
	for _, name := range names(src) {
		if name == "notes" {
			continue
		}
		if !slices.Equal(src[name], restored[name]) {
			t.Errorf("table %s differs: %d rows in the source, %d restored", name, len(src[name]), len(restored[name]))
		}
	}
	byID := make(map[string]string, len(src["notes"]))
	for _, r := range src["notes"] {
		byID[r.id] = r.text
	}
	pre := 0
	seqs := make([][]int, len(before))
	for _, r := range restored["notes"] {
		if byID[r.id] != r.text {
			t.Fatalf("restored record %s is not in the source as restored:\nsource   %q\nrestored %q", r.id, byID[r.id], r.text)
		}
		if strings.HasPrefix(r.title, "p-") {
			pre++
			continue
		}
		var w, seq int
		if _, err := fmt.Sscanf(r.title, "w%d-%d", &w, &seq); err != nil || w < 0 || w >= len(before) {
			t.Fatalf("unexpected record title %q", r.title)
		}
		seqs[w] = append(seqs[w], seq)
	}
	if pre != preload {
		t.Errorf("restored %d of the %d preloaded records", pre, preload)
	}
	for w, s := range seqs {
		slices.Sort(s)
		for i, seq := range s {
			if seq != i {
				t.Fatalf("writer %d: restored records %v…: not a prefix of its writes, so not one snapshot", w, s[:min(len(s), i+3)])
			}
		}
		if int64(len(s)) < before[w] {
			t.Errorf("writer %d: %d records restored, but %d were acknowledged before the backup began", w, len(s), before[w])
		}
	}
	t.Logf("restored %d records; per writer %v (acknowledged before the backup: %v); source has %d",
		len(restored["notes"]), lens(seqs), before, len(src["notes"]))
}

func lens(s [][]int) []int {
	out := make([]int, len(s))
	for i := range s {
		out[i] = len(s[i])
	}
	return out
}
