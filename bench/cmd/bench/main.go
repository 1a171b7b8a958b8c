// Command bench builds Strata, a ceiling, a floor and PocketBase, runs each
// as its own process on a loopback port, loads the same data into each,
// runs every scenario against every target and writes the results.
//
//	cd bench && go run ./cmd/bench            a full run
//	cd bench && go run ./cmd/bench -short     the quick run CI uses
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/strata-dev/strata/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "small data, 1s rounds, 2 rounds, 8 connections: the quick run CI uses")
	def := bench.DefaultConfig(false)
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios: "+strings.Join(def.Scenarios, ", "))
	targets := fs.String("targets", "all", "comma-separated targets: "+strings.Join(def.Targets, ", "))
	duration := fs.Duration("duration", 0, "length of one round (default 3s; -short: 1s)")
	rounds := fs.Int("rounds", 0, "rounds per scenario (default 5; -short: 2)")
	records := fs.Int("records", 0, "posts to load (default 100000; -short: 2000)")
	conns := fs.Int("conns", 0, "connections of the closed loop (default 50; -short: 8)")
	out := fs.String("out", "results", `directory for the results files ("" writes none)`)
	storage := fs.Bool("storage", true, "measure the storage ceilings: raw SQLite inserts, one row and 100 rows per transaction")
	baseline := fs.String("baseline", "", "another checkout of Strata, run as the target strata-baseline beside strata-sqlite (\"\": none)")
	profile := fs.String("profile", "", "directory for a CPU profile of each of Strata's scenarios, TARGET-SCENARIO.pprof (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := bench.DefaultConfig(*short)
	cfg.Command = strings.TrimSpace("go run ./cmd/bench " + strings.Join(args, " "))
	cfg.Out, cfg.Profile, cfg.Storage, cfg.Baseline = *out, *profile, *storage, *baseline
	if *scenarios != "all" {
		cfg.Scenarios = strings.Split(*scenarios, ",")
	}
	if *targets != "all" {
		cfg.Targets = strings.Split(*targets, ",")
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *records > 0 {
		cfg.Records = *records
	}
	if *conns > 0 {
		cfg.Conns = *conns
	}
	_, err := bench.Run(ctx, cfg)
	return err
}
