package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/strata-dev/strata/internal/store"
)

// PostgreSQL backups are logical: pg_dump in its custom format, loaded
// again by pg_restore. Both run as child processes; the connection URL
// reaches them without its password, which travels in PGPASSWORD, so it
// shows neither in the process list nor in any message.

// installHint says how to get the PostgreSQL client programs.
const installHint = "install the PostgreSQL client programs of the server's major version or newer " +
	"(Debian, Ubuntu: apt-get install postgresql-client; Alpine: apk add postgresql-client; " +
	"macOS: brew install libpq) or put them on PATH"

// basebackupHint documents the physical alternative.
const basebackupHint = "for a physical copy of the whole server instead, use " +
	"pg_basebackup --pgdata=DIR --format=tar --gzip --wal-method=stream, " +
	"and copy the data directory's secret and keys/ beside it"

// tool finds a PostgreSQL client program.
func tool(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not installed (not found on PATH): %s; %s", name, installHint, basebackupHint)
	}
	return path, nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// toolVersion runs "name --version" and returns its version, such as
// "15.14", and major version.
func toolVersion(ctx context.Context, path string) (string, int, error) {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", 0, fmt.Errorf("run %s --version: %w", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", 0, fmt.Errorf("%s --version printed %q, not a PostgreSQL version", path, bytes.TrimSpace(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	v := string(m[1])
	if len(m[2]) > 0 {
		v += "." + string(m[2])
	}
	return v, major, nil
}

// pgTarget is how a client program reaches the database of a URL.
type pgTarget struct {
	dbname  string   // the URL without password, for --dbname
	env     []string // PGPASSWORD, PGOPTIONS
	schemas []string // the schemas of search_path, if set
}

// pgxOnly are URL parameters of pgx that libpq does not know.
var pgxOnly = map[string]bool{
	"pool_max_conns": true, "pool_min_conns": true, "pool_min_idle_conns": true, "pool_max_conn_lifetime": true,
	"pool_max_conn_lifetime_jitter": true, "pool_max_conn_idle_time": true, "pool_health_check_period": true,
	"statement_cache_capacity": true, "description_cache_capacity": true, "default_query_exec_mode": true,
	"min_read_buffer_size": true, "servicefile": true,
}

// libpqParams are the URL parameters libpq takes as they are.
var libpqParams = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "passfile": true,
	"channel_binding": true, "connect_timeout": true, "client_encoding": true, "options": true,
	"application_name": true, "fallback_application_name": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true, "replication": true, "gssencmode": true, "sslmode": true,
	"requiressl": true, "sslcompression": true, "sslcert": true, "sslkey": true, "sslpassword": true,
	"sslcertmode": true, "sslrootcert": true, "sslcrl": true, "sslcrldir": true, "sslsni": true,
	"requirepeer": true, "ssl_min_protocol_version": true, "ssl_max_protocol_version": true,
	"krbsrvname": true, "gsslib": true, "gssdelegation": true, "service": true,
	"target_session_attrs": true, "load_balance_hosts": true, "sslnegotiation": true,
}

// newPGTarget turns a pgx connection URL into arguments for libpq
// programs: the password moves to PGPASSWORD, other server settings pgx
// passes (such as search_path) to PGOPTIONS, and pgx's pool settings are
// dropped.
func newPGTarget(rawURL string) (pgTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return pgTarget{}, errors.New("the database URL does not parse")
	}
	var t pgTarget
	var password string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			password = pw
			u.User = url.User(u.User.Username())
		}
	}
	q := u.Query()
	out := url.Values{}
	var opts []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		v := q.Get(k)
		switch {
		case k == "password":
			password = v
		case pgxOnly[k]:
		case libpqParams[k]:
			out.Set(k, v)
		default:
			opts = append(opts, "-c "+k+"="+escapeOption(v))
			if k == "search_path" {
				t.schemas = searchPath(v)
			}
		}
	}
	u.RawQuery = out.Encode()
	t.dbname = u.String()
	if password != "" {
		t.env = append(t.env, "PGPASSWORD="+password)
	}
	if len(opts) > 0 {
		t.env = append(t.env, "PGOPTIONS="+strings.Join(opts, " "))
	}
	return t, nil
}

// escapeOption escapes a value for PGOPTIONS, where spaces separate
// options and backslash escapes.
func escapeOption(v string) string {
	return strings.NewReplacer(`\`, `\\`, " ", `\ `).Replace(v)
}

// searchPath returns the schemas named in a search_path value, leaving out
// "$user" and the system schemas.
func searchPath(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`) && len(s) >= 2 {
			s = strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
		}
		if s == "" || s == "$user" || s == "pg_catalog" || s == "information_schema" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// serverVersion returns the server's version as server_version_num, such
// as 150014.
func serverVersion(ctx context.Context, rawURL string) (int, error) {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return 0, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&s); err != nil {
		return 0, fmt.Errorf("read server version: %w", err)
	}
	return strconv.Atoi(s)
}

// majorOf returns the major version of a server_version_num.
func majorOf(num int) int {
	if num >= 100000 {
		return num / 10000
	}
	return num / 10000 // 9.6 is 90600
}

// dumpPostgres runs pg_dump on the database of rawURL into dst, in the
// custom format without owners. pg_dump takes its snapshot in one
// repeatable-read transaction, so the dump is consistent and the server
// keeps taking writes meanwhile.
func dumpPostgres(ctx context.Context, rawURL, dst string, environ []string, p Progress) (*PostgresInfo, error) {
	bin, err := tool("pg_dump")
	if err != nil {
		return nil, err
	}
	version, major, err := toolVersion(ctx, bin)
	if err != nil {
		return nil, err
	}
	server, err := serverVersion(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if sm := majorOf(server); major < sm {
		return nil, fmt.Errorf("pg_dump %s is older than the server (major version %d): pg_dump refuses to dump a newer server; %s", version, sm, installHint)
	}
	t, err := newPGTarget(rawURL)
	if err != nil {
		return nil, err
	}
	args := []string{"--format=custom", "--no-owner", "--file=" + dst}
	for _, s := range t.schemas {
		args = append(args, "--schema="+quoteIdent(s))
	}
	args = append(args, "--dbname="+t.dbname)
	p.Start("backup: dump", -1)
	defer p.Done()
	stop := watchSize(dst, p)
	err = runTool(ctx, bin, args, append(slices.Clip(environ), t.env...))
	stop()
	if err != nil {
		return nil, err
	}
	return &PostgresInfo{ServerVersion: server, DumpVersion: version, Schemas: t.schemas}, nil
}

// quoteIdent quotes a schema name for pg_dump's --schema, which takes a
// pattern: quoting keeps its case and any pattern characters literal.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// runTool runs a client program and, if it fails, returns an error
// holding the end of what it wrote to stderr.
func runTool(ctx context.Context, bin string, args, env []string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return fmt.Errorf("%s failed: %w", bin, err)
		}
		return fmt.Errorf("%s failed: %w: %s", bin, err, msg)
	}
	return nil
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 8<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// checkEmptyPostgres fails when the database of rawURL already holds
// Strata's tables in the schemas its search_path names.
func checkEmptyPostgres(ctx context.Context, rawURL string) error {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = ANY($1) AND n.nspname = ANY(current_schemas(false))
		ORDER BY 1`, store.SystemTables())
	if err != nil {
		return fmt.Errorf("look for strata tables: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for strata tables: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("the database already holds strata tables (%s): restore needs an empty database; create a new one, or drop these tables", strings.Join(found, ", "))
	}
	return nil
}

// existingSchemas returns which of names exist in the database.
func existingSchemas(ctx context.Context, rawURL string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("look for schemas: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// restorePostgres loads the dump at path into the database of rawURL with
// pg_restore, in one transaction that stops at the first error: a failed
// restore leaves the database as it was. Schemas of the dump that exist
// already (made empty by an operator) are not created again.
func restorePostgres(ctx context.Context, rawURL, path string, info *PostgresInfo, environ []string, p Progress) error {
	bin, err := tool("pg_restore")
	if err != nil {
		return err
	}
	version, major, err := toolVersion(ctx, bin)
	if err != nil {
		return err
	}
	if dm, _, _ := strings.Cut(info.DumpVersion, "."); dm != "" {
		if n, err := strconv.Atoi(dm); err == nil && major < n {
			return fmt.Errorf("pg_restore %s cannot read a dump made by pg_dump %s: %s", version, info.DumpVersion, installHint)
		}
	}
	t, err := newPGTarget(rawURL)
	if err != nil {
		return err
	}
	if !slices.Equal(t.schemas, info.Schemas) {
		return fmt.Errorf("the backup holds schemas %q but the database URL's search_path names %q: set search_path to the backup's schemas", info.Schemas, t.schemas)
	}
	env := append(slices.Clip(environ), t.env...)
	args := []string{"--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--dbname=" + t.dbname}
	exist, err := existingSchemas(ctx, rawURL, info.Schemas)
	if err != nil {
		return err
	}
	if len(exist) > 0 {
		list, err := restoreList(ctx, bin, path, exist, env)
		if err != nil {
			return err
		}
		defer os.Remove(list)
		args = append(args, "--use-list="+list)
	}
	p.Start("restore: load", -1)
	defer p.Done()
	return runTool(ctx, bin, append(args, path), env)
}

// restoreList writes the dump's table of contents without the entries that
// create the schemas in skip, and returns the file's path.
func restoreList(ctx context.Context, bin, dump string, skip []string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "--list", dump)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pg_restore --list: %w", err)
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		// An entry reads "ID; OID OID SCHEMA - NAME OWNER".
		if f := strings.Fields(line); len(f) >= 6 && !strings.HasPrefix(line, ";") &&
			f[3] == "SCHEMA" && f[4] == "-" && slices.Contains(skip, f[5]) {
			continue
		}
		kept.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("pg_restore --list: %w", err)
	}
	f, err := os.CreateTemp("", "strata-restore-*.list")
	if err != nil {
		return "", err
	}
	_, err = f.Write(kept.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
