package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// errNoPostgres says that there is no PostgreSQL to run strata-postgres on.
var errNoPostgres = errors.New("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin and STRATA_TEST_POSTGRES_URL is not set")

// postgres is the server strata-postgres runs on: the one that
// STRATA_TEST_POSTGRES_URL names, or one started here with its default
// settings (fsync on) on a free loopback port.
type postgres struct {
	url     string // the maintenance database, for CREATE DATABASE
	version string
	bin     string // the server's bin directory, when started here
	dir     string // its data and socket directory, when started here
	dbs     []string
}

// startPostgres uses STRATA_TEST_POSTGRES_URL, or else starts a server in
// a new temporary directory. It returns errNoPostgres when neither can be.
func startPostgres(ctx context.Context) (*postgres, error) {
	pg := &postgres{url: os.Getenv("STRATA_TEST_POSTGRES_URL")}
	if pg.url == "" {
		if err := pg.start(ctx); err != nil {
			pg.stop(ctx)
			return nil, err
		}
	}
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		pg.stop(ctx)
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&pg.version); err != nil {
		pg.stop(ctx)
		return nil, err
	}
	pg.version = "PostgreSQL " + pg.version
	return pg, nil
}

func (pg *postgres) start(ctx context.Context) error {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return errNoPostgres
	}
	sort.Slice(bins, func(i, j int) bool { return major(bins[i]) < major(bins[j]) })
	pg.bin = filepath.Dir(bins[len(bins)-1])
	// Not under the run's own temporary directory: the postgres user must
	// reach this one.
	dir, err := os.MkdirTemp("", "strata-bench-postgres-")
	if err != nil {
		return err
	}
	pg.dir = dir
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs a postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := pg.run(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addr)
		opts := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1", port, dir)
		out, err := pg.run(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start")
		if err == nil {
			pg.url = "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, tail(filepath.Join(dir, "server.log"), 10))
		}
	}
}

// run runs one of the server's programs, as the postgres user when root.
func (pg *postgres) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(pg.bin, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = pg.dir
	cmd.Env = childEnv()
	return cmd.CombinedOutput()
}

// createDB creates an empty database and returns its URL.
func (pg *postgres) createDB(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	name := "strata_bench_" + strings.ToLower(rand.Text()[:10])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	pg.dbs = append(pg.dbs, name)
	u, err := url.Parse(pg.url)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// stop stops a server started here, or drops the databases made on one
// that was given.
func (pg *postgres) stop(ctx context.Context) {
	if pg.dir == "" {
		if pg.url == "" || len(pg.dbs) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, pg.url); err == nil {
			for _, db := range pg.dbs {
				conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			}
			conn.Close(ctx)
		}
		return
	}
	data := filepath.Join(pg.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		pg.run(context.WithoutCancel(ctx), "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop")
	}
	os.RemoveAll(pg.dir)
}

// major is the major version in a path like /usr/lib/postgresql/15/bin.
func major(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}
