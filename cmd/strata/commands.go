package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/strata-dev/strata/internal/app"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// flags builds a command's flag set with the configuration flags.
func flags(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("strata "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	config.Register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage:\n  strata %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after the positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open loads the configuration and opens the app.
func open(ctx context.Context, e env, fs *flag.FlagSet, automigrate bool) (*app.App, config.Config, error) {
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return nil, cfg, err
	}
	cfg.Automigrate = cfg.Automigrate && automigrate
	a, err := app.Open(ctx, cfg, app.NewLogger(cfg, e.stderr))
	return a, cfg, err
}

func serve(ctx context.Context, args []string, e env) error {
	fs := flags(e, "serve", "serve [flags]")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return err
	}
	// A server logs a line per request: off a terminal, lines are written
	// in batches (see telemetry.LogWriter), and the rest at the end.
	logs := e.stderr
	if !telemetry.IsTerminal(e.stderr) {
		lw := telemetry.NewLogWriter(e.stderr)
		defer lw.Close()
		logs = lw
	}
	if cfg.HasRole("gateway") {
		return app.ServeGateway(ctx, cfg, app.NewLogger(cfg, logs))
	}
	// The banner is for people: it goes with text logs, while JSON logs
	// carry the same as one line.
	var banner io.Writer
	if cfg.LogFormat == "text" || cfg.LogFormat == "auto" && telemetry.IsTerminal(e.stderr) {
		banner = logs
	}
	a, err := app.Open(ctx, cfg, app.NewLogger(cfg, logs), app.Options{Banner: banner})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.ListenAndServe(ctx)
}

func migrate(ctx context.Context, args []string, e env) error {
	fs := flags(e, "migrate", "migrate up|down|status|export [flags]\n\n"+
		"  up      apply the migration files not yet applied, in order\n"+
		"  down    undo the last applied migration\n"+
		"  status  list migrations and whether each is applied\n"+
		"  export  write every applied migration into the migrations directory")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("migrate needs one of up, down, status, export")
	}
	switch pos[0] {
	case "up", "down", "status", "export":
	default:
		fs.Usage()
		return usagef("unknown migrate action %q; want up, down, status or export", pos[0])
	}
	a, cfg, err := open(ctx, e, fs, false)
	if err != nil {
		return err
	}
	defer a.Close()
	recs, dir := a.Records(), cfg.MigrationsPath()
	switch pos[0] {
	case "up":
		applied, err := recs.Up(ctx, dir)
		for _, id := range applied {
			fmt.Fprintln(e.stdout, "applied", id)
		}
		if err == nil && len(applied) == 0 {
			fmt.Fprintln(e.stdout, "nothing to apply")
		}
		return err
	case "down":
		id, err := recs.Down(ctx)
		if err == nil {
			if id == "" {
				fmt.Fprintln(e.stdout, "nothing to undo")
			} else {
				fmt.Fprintln(e.stdout, "undid", id)
			}
		}
		return err
	case "status":
		list, err := recs.Status(ctx, dir)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tAPPLIED\tFILE")
		for _, m := range list {
			state, applied, file := "pending", "-", "yes"
			if m.Applied != nil {
				state, applied = "applied", m.Applied.Format("2006-01-02 15:04:05")
			}
			if !m.InDir {
				file = "no"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, state, applied, file)
		}
		return tw.Flush()
	case "export":
		n, err := recs.Export(ctx, dir)
		if err == nil {
			fmt.Fprintf(e.stdout, "wrote %d migrations to %s\n", n, dir)
		}
		return err
	}
	panic("unreachable: the action was checked before opening")
}

func superuser(ctx context.Context, args []string, e env) error {
	fs := flags(e, "superuser", "superuser create EMAIL [--password-stdin] [flags]")
	stdin := fs.Bool("password-stdin", false, "read the password from standard input instead of a prompt")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "create" {
		fs.Usage()
		return usagef("superuser needs: create EMAIL")
	}
	password, err := readPassword(e, *stdin)
	if err != nil {
		return err
	}
	a, _, err := open(ctx, e, fs, true)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.CreateSuperuser(ctx, pos[1], password); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "superuser %s is ready\n", pos[1])
	return nil
}

func readPassword(e env, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("standard input is not a terminal: pass --password-stdin and send the password on standard input")
	}
	fmt.Fprint(e.stderr, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(e.stderr, "Repeat password: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords differ")
	}
	return string(p1), nil
}

func configCmd(ctx context.Context, args []string, e env) error {
	fs := flags(e, "config", "config check [flags]")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "check" {
		fs.Usage()
		return usagef("config needs: check")
	}
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(cfg.Redacted(), "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\nconfiguration is valid\n", out)
	return nil
}

func keys(ctx context.Context, args []string, e env) error {
	fs := flags(e, "keys", "keys rotate [flags]\n\n"+
		"  rotate  add a signing key; tokens signed with the old ones stay valid until they\n"+
		"          expire, and keys whose tokens have all expired are deleted")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "rotate" {
		fs.Usage()
		return usagef("keys needs: rotate")
	}
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return err
	}
	// Keep a replaced key while a token it signed can still be alive.
	retain := max(cfg.TokenTTL, identity.AccessTTL) + time.Minute
	kid, removed, err := auth.Rotate(cfg.Dir, time.Now(), retain)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "new signing key %s\n", kid)
	for _, k := range removed {
		fmt.Fprintf(e.stdout, "deleted expired key %s\n", k)
	}
	return nil
}

func version(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("strata version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage:\n  strata version") }
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("version takes no arguments, got %q", pos)
	}
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(e.stdout, "strata %s\n", v)
	return nil
}
