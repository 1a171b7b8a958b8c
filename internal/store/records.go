package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Alias is the table alias records queries give the collection's table;
// filters compiled for these queries must use it.
const Alias = "r"

// columns lists the stored columns of c after the system ones.
func columns(c *schema.Collection) []string {
	if c.Type == schema.Document {
		return []string{schema.DocumentColumn}
	}
	names := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		names[i] = f.Name
	}
	return names
}

func isJSONColumn(c *schema.Collection, name string) bool {
	if c.Type == schema.Document {
		return name == schema.DocumentColumn
	}
	f := c.Field(name)
	return f != nil && (f.IsList() || f.Type == schema.JSON)
}

// selectList is the SELECT list that scanRecord reads.
func selectList(d sqldb.Dialect, c *schema.Collection) string {
	return selectFor(d, c).list
}

// selectSQL is the text of a collection's reads.
type selectSQL struct {
	list string // the SELECT list that scanRecord reads
	// byID reads one record by its id, the first placeholder.
	byID string
	// returning is list without the table alias, for RETURNING.
	returning string
}

// selectFor returns c's selectSQL, built once: building it cost three
// allocations per read, and the statement two more.
func selectFor(d sqldb.Dialect, c *schema.Collection) *selectSQL {
	k := selectKey{d, c}
	if s, ok := selectSQLs.Load(k); ok {
		return s.(*selectSQL)
	}
	list := buildSelectList(d, c, "r.")
	s := &selectSQL{list: list, returning: buildSelectList(d, c, ""),
		byID: `SELECT ` + list + ` FROM ` + d.Quote(c.Name) + ` r WHERE r."id" = ` + (&sqldb.Args{Dialect: d}).Add(nil)}
	// A collection's schema never changes once loaded (a change makes a
	// new one), so its text is kept; the old ones go when there are many.
	if selectSQLsN.Add(1) > maxSelectSQLs {
		selectSQLs.Clear()
		selectSQLsN.Store(1)
	}
	selectSQLs.Store(k, s)
	return s
}

type selectKey struct {
	d sqldb.Dialect
	c *schema.Collection
}

var (
	selectSQLs    sync.Map // selectKey -> *selectSQL
	selectSQLsN   atomic.Int64
	maxSelectSQLs int64 = 1024
)

// buildSelectList lists the columns scanRecord reads, each after prefix
// (the table alias and a dot, or "").
func buildSelectList(d sqldb.Dialect, c *schema.Collection, prefix string) string {
	var b strings.Builder
	for i, name := range append([]string{"id", "created", "updated"}, columns(c)...) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix)
		b.WriteString(d.Quote(name))
		if d == sqldb.Postgres && isJSONColumn(c, name) {
			b.WriteString("::text")
		}
	}
	return b.String()
}

// encode turns a record value into a bind parameter for the column.
func encode(d sqldb.Dialect, v any) (any, error) {
	switch v := v.(type) {
	case time.Time:
		if d == sqldb.Postgres {
			return v.UTC(), nil
		}
		return Stamp(v), nil
	case []string:
		if v == nil {
			return nil, nil
		}
		out, err := json.Marshal(v)
		return string(out), err
	case json.RawMessage:
		return string(v), nil
	}
	return v, nil
}

func documentJSON(v schema.Values) (string, error) {
	if v == nil {
		return "{}", nil
	}
	out, err := json.Marshal(map[string]any(v))
	return string(out), err
}

// InsertRecord inserts r into c's table.
func InsertRecord(ctx context.Context, tx *Tx, c *schema.Collection, r *schema.Record) error {
	d := tx.Dialect
	a := args(d)
	names := []string{`"id"`, `"created"`, `"updated"`}
	ph := []string{a.Add(r.ID), addTime(a, r.Created), addTime(a, r.Updated)}
	vals, err := columnValues(d, c, r.Values)
	if err != nil {
		return err
	}
	for i, name := range columns(c) {
		names = append(names, d.Quote(name))
		ph = append(ph, a.Add(vals[i]))
	}
	stmt := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", d.Quote(c.Name), strings.Join(names, ", "), strings.Join(ph, ", "))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert into %s: %w", c.Name, classifyDDL(d, err))
	}
	return nil
}

// UpdateRecord writes r's values and updated time over the stored record.
// It returns ErrNotFound when no record has r's id.
func UpdateRecord(ctx context.Context, tx *Tx, c *schema.Collection, r *schema.Record) error {
	d := tx.Dialect
	a := args(d)
	sets := []string{`"updated" = ` + addTime(a, r.Updated)}
	vals, err := columnValues(d, c, r.Values)
	if err != nil {
		return err
	}
	for i, name := range columns(c) {
		sets = append(sets, d.Quote(name)+" = "+a.Add(vals[i]))
	}
	stmt := fmt.Sprintf(`UPDATE %s SET %s WHERE "id" = %s`, d.Quote(c.Name), strings.Join(sets, ", "), a.Add(r.ID))
	res, err := tx.ExecContext(ctx, stmt, a.Values...)
	if err != nil {
		return fmt.Errorf("update %s: %w", c.Name, classifyDDL(d, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record %s: %w", r.ID, ErrNotFound)
	}
	return nil
}

// DeleteRecord deletes the record with the id, or returns ErrNotFound.
func DeleteRecord(ctx context.Context, tx *Tx, c *schema.Collection, id string) error {
	return DeleteRecordIf(ctx, tx, c, id, "", args(tx.Dialect))
}

// DeleteRecordIf deletes the record with the id if it meets cond, a
// condition on the table aliased Alias whose values are already in a. It
// returns ErrNotFound when no such record exists.
func DeleteRecordIf(ctx context.Context, tx *Tx, c *schema.Collection, id, cond string, a *sqldb.Args) error {
	res, err := tx.ExecContext(ctx, deleteIf(tx.Dialect, c, id, cond, a), a.Values...)
	if err != nil {
		return fmt.Errorf("delete from %s: %w", c.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record %s: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteRecordReturning is DeleteRecordIf that also returns the record as
// it was, read by the statement that deletes it.
func DeleteRecordReturning(ctx context.Context, tx *Tx, c *schema.Collection, id, cond string, a *sqldb.Args) (*schema.Record, error) {
	stmt := deleteIf(tx.Dialect, c, id, cond, a) + ` RETURNING ` + selectFor(tx.Dialect, c).returning
	r, _, err := oneRecord(ctx, tx, c, "delete from", "record", id, stmt, a.Values, 0)
	return r, err
}

// oneRecord runs stmt, which reads at most one record of c and extra
// values after it, and returns them; ErrNotFound, naming kind and id, when
// there is none. One row by its key is read at once: watching ctx to
// interrupt it would cost more than the read (the SQLite driver starts a
// goroutine per statement whose context can be cancelled). Errors say the
// statement does op (such as "get from") on c.
func oneRecord(ctx context.Context, q Querier, c *schema.Collection, op, kind, id, stmt string, args []any, extra int) (*schema.Record, []any, error) {
	rows, err := q.QueryContext(context.WithoutCancel(ctx), stmt, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", op, c.Name, err)
	}
	if !rows.Next() { // which closes rows
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", op, c.Name, err)
		}
		return nil, nil, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	r, keys, err := scanRecord(rows, c, extra)
	// A statement that writes (DELETE ... RETURNING) may report its
	// error after its row: Close gives it.
	if cerr := rows.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s %s: %w", op, c.Name, cerr)
	}
	if err != nil {
		return nil, nil, err
	}
	return r, keys, nil
}

func deleteIf(d sqldb.Dialect, c *schema.Collection, id, cond string, a *sqldb.Args) string {
	table := d.Quote(c.Name)
	return `DELETE FROM ` + table + ` WHERE "id" IN (SELECT r."id" FROM ` + table + ` r WHERE ` + withID(cond, id, a) + `)`
}

// withID appends the id condition after cond; placeholders follow the
// order of the text.
func withID(cond, id string, a *sqldb.Args) string {
	if cond == "" {
		return `r."id" = ` + a.Add(id)
	}
	return "(" + cond + `) AND r."id" = ` + a.Add(id)
}

func addTime(a *sqldb.Args, t time.Time) string {
	v, _ := encode(a.Dialect, t)
	return a.Add(v)
}

func columnValues(d sqldb.Dialect, c *schema.Collection, v schema.Values) ([]any, error) {
	if c.Type == schema.Document {
		doc, err := documentJSON(v)
		return []any{doc}, err
	}
	out := make([]any, len(c.Fields))
	for i, f := range c.Fields {
		ev, err := encode(d, v[f.Name])
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", f.Name, err)
		}
		out[i] = ev
	}
	return out, nil
}

// GetRecord reads the record with the id, or returns ErrNotFound.
func GetRecord(ctx context.Context, q Querier, d sqldb.Dialect, c *schema.Collection, id string) (*schema.Record, error) {
	return GetRecordIf(ctx, q, c, id, "", args(d), false)
}

// GetRecordIf reads the record with the id if it meets cond (see
// DeleteRecordIf), or returns ErrNotFound. With lock, PostgreSQL holds the
// row until the transaction ends.
func GetRecordIf(ctx context.Context, q Querier, c *schema.Collection, id, cond string, a *sqldb.Args, lock bool) (*schema.Record, error) {
	d := a.Dialect
	var stmt string
	if sel := selectFor(d, c); cond == "" && len(a.Values) == 0 {
		stmt, a.Values = sel.byID, append(a.Values, id)
	} else {
		stmt = `SELECT ` + sel.list + ` FROM ` + d.Quote(c.Name) + ` r WHERE ` + withID(cond, id, a)
	}
	if lock {
		stmt += forUpdate(d)
	}
	r, _, err := oneRecord(ctx, q, c, "get from", "record", id, stmt, a.Values, 0)
	return r, err
}

// ListQuery selects a page of records. Where and the key expressions were
// compiled against Alias with Args.
type ListQuery struct {
	Where   string
	Args    *sqldb.Args
	OrderBy string
	// Keys are SQL expressions whose values on each row are returned beside
	// it, for the cursor that continues after the row.
	Keys  []string
	Limit int
}

// ListRecords returns the records q selects and, for each, the values of
// q.Keys.
func ListRecords(ctx context.Context, db Querier, c *schema.Collection, q ListQuery) ([]*schema.Record, [][]any, error) {
	d := q.Args.Dialect
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s", selectList(d, c))
	for _, k := range q.Keys {
		b.WriteString(", ")
		b.WriteString(k)
	}
	fmt.Fprintf(&b, " FROM %s r", d.Quote(c.Name))
	if q.Where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(q.Where)
	}
	if q.OrderBy != "" {
		b.WriteString(" ORDER BY ")
		b.WriteString(q.OrderBy)
	}
	if q.Limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", q.Limit)
	}
	rows, err := db.QueryContext(ctx, b.String(), q.Args.Values...)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", c.Name, err)
	}
	defer rows.Close()
	var recs []*schema.Record
	var keys [][]any
	var sc rowScanner
	for rows.Next() {
		r, k, err := sc.scan(rows, c, len(q.Keys))
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, r)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", c.Name, err)
	}
	return recs, keys, nil
}

// CountRecords counts the records that where selects.
func CountRecords(ctx context.Context, db Querier, c *schema.Collection, where string, a *sqldb.Args) (int64, error) {
	stmt := fmt.Sprintf("SELECT COUNT(*) FROM %s r", a.Dialect.Quote(c.Name))
	if where != "" {
		stmt += " WHERE " + where
	}
	var n int64
	if err := db.QueryRowContext(ctx, stmt, a.Values...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", c.Name, err)
	}
	return n, nil
}

// Exist returns which of ids exist in c.
func Exist(ctx context.Context, db Querier, d sqldb.Dialect, c *schema.Collection, ids []string) (map[string]bool, error) {
	found := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	a := args(d)
	stmt := `SELECT "id" FROM ` + d.Quote(c.Name) + ` WHERE ` + sqldb.In(a, `"id"`, ids)
	rows, err := db.QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("check ids in %s: %w", c.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		found[id] = true
	}
	return found, rows.Err()
}

// GetMany reads the records with the given ids that meet cond (see
// DeleteRecordIf); the others are left out.
func GetMany(ctx context.Context, db Querier, c *schema.Collection, ids []string, cond string, a *sqldb.Args) ([]*schema.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	where := sqldb.In(a, `r."id"`, ids)
	if cond != "" {
		where = "(" + cond + ") AND " + where
	}
	recs, _, err := ListRecords(ctx, db, c, ListQuery{Where: where, Args: a})
	return recs, err
}

func scanRecord(rows *sql.Rows, c *schema.Collection, extra int) (*schema.Record, []any, error) {
	sc := scanners.Get().(*rowScanner)
	r, keys, err := sc.scan(rows, c, extra)
	clear(sc.vals)
	scanners.Put(sc)
	return r, keys, err
}

// scanners keeps the buffers of single-row reads from one to the next.
var scanners = sync.Pool{New: func() any { return new(rowScanner) }}

// rowScanner scans the rows of one query, reusing its buffers from row to
// row.
type rowScanner struct {
	vals, dest []any
}

func (sc *rowScanner) scan(rows *sql.Rows, c *schema.Collection, extra int) (*schema.Record, []any, error) {
	ncols := len(c.Fields)
	if c.Type == schema.Document {
		ncols = 1
	}
	if n := 3 + ncols + extra; len(sc.vals) != n {
		sc.vals, sc.dest = make([]any, n), make([]any, n)
		for i := range sc.dest {
			sc.dest[i] = &sc.vals[i]
		}
	}
	vals := sc.vals
	if err := rows.Scan(sc.dest...); err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", c.Name, err)
	}
	val := func(i int) any { return vals[i] }
	r := &schema.Record{Collection: c, Values: make(schema.Values, ncols)}
	var err error
	if r.ID, err = asString(val(0)); err != nil {
		return nil, nil, err
	}
	if r.Created, err = asTime(val(1)); err != nil {
		return nil, nil, err
	}
	if r.Updated, err = asTime(val(2)); err != nil {
		return nil, nil, err
	}
	if c.Type == schema.Document {
		s, err := asString(val(3))
		if err != nil {
			return nil, nil, err
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&r.Values); err != nil {
			return nil, nil, fmt.Errorf("scan %s: corrupt document %s: %w", c.Name, r.ID, err)
		}
	} else {
		for i, f := range c.Fields {
			v, err := decode(f, val(3+i))
			if err != nil {
				return nil, nil, fmt.Errorf("scan %s.%s of %s: %w", c.Name, f.Name, r.ID, err)
			}
			r.Values[f.Name] = v
		}
	}
	keys := make([]any, extra)
	for i := range keys {
		v := val(3 + ncols + i)
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		keys[i] = v
	}
	return r, keys, nil
}

func asString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("expected text, got %T", v)
}

func asTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		return schema.ParseStoredTime(v)
	case []byte:
		return schema.ParseStoredTime(string(v))
	}
	return time.Time{}, fmt.Errorf("expected a datetime, got %T", v)
}

// decode turns a scanned column value into the field's Go value.
func decode(f *schema.Field, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch {
	case f.IsList():
		s, err := asString(v)
		if err != nil {
			return nil, err
		}
		var list []string
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, err
		}
		return list, nil
	case f.Type == schema.JSON:
		s, err := asString(v)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s)); err != nil {
			return nil, err
		}
		return json.RawMessage(buf.Bytes()), nil
	case f.Type == schema.Number:
		switch n := v.(type) {
		case float64:
			return n, nil
		case int64:
			return float64(n), nil
		}
	case f.Type == schema.Bool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			return b != 0, nil
		}
	case f.Type == schema.DateTime:
		return asTime(v)
	default:
		return asString(v)
	}
	return nil, fmt.Errorf("unexpected %T for a %s field", v, f.Type)
}

// SetField writes one field of a record; it returns ErrNotFound when no
// record has the id.
func SetField(ctx context.Context, tx *Tx, c *schema.Collection, id, field string, value any) error {
	if c.Field(field) == nil {
		return fmt.Errorf("set %s: no such field in %s", field, c.Name)
	}
	v, err := encode(tx.Dialect, value)
	if err != nil {
		return err
	}
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`UPDATE %s SET %s = %s WHERE "id" = %s`, tx.Dialect.Quote(c.Name), tx.Dialect.Quote(field), a.Add(v), a.Add(id))
	res, err := tx.ExecContext(ctx, stmt, a.Values...)
	if err != nil {
		return fmt.Errorf("set %s.%s: %w", c.Name, field, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
