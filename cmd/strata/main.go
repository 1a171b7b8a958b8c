// Command strata runs the Strata backend and manages its data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// gcPercent is the garbage collector's target for the server when GOGC is
// not set: the heap may grow to three times what is live before a
// collection (Go's default is two). A server's live heap is small and
// every request allocates, so at the default the collector ran often:
// a list of 50 took 578 µs of CPU, 471 at 200 and 425 at 400 (bench,
// 100,000 posts). 200 takes most of the gain for half the extra memory;
// GOGC and GOMEMLIMIT in the environment still decide.
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		var ue usageError
		fmt.Fprintln(os.Stderr, "strata:", err)
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what a command gets from the process around it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"serve", "run the server", serve},
		{"migrate", "apply, undo, list or export schema migrations", migrate},
		{"superuser", "create a superuser or set its password", superuser},
		{"config", "check the configuration and print it", configCmd},
		{"keys", "rotate the keys that sign access tokens", keys},
		{"backup", "write a consistent backup of the data, keys and migrations", backupCmd},
		{"restore", "restore a backup into an empty data directory", restoreCmd},
		{"version", "print the version", version},
	}
}

const topUsage = `Strata is a backend in one binary: collections, a REST API, identity.

Usage:
  strata <command> [flags]

Commands:
%s
Run "strata <command> --help" for the flags of a command.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) error {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, environ: environ}
	usage := func(w io.Writer) {
		var list string
		for _, c := range commands() {
			list += fmt.Sprintf("  %-10s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, topUsage, list)
	}
	if len(args) == 0 {
		usage(stderr)
		return usagef("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	usage(stderr)
	return usagef("unknown command %q", args[0])
}
