// Command retrieval-worker serves the "retrieval" Nexus service from a
// Temporal worker; "retrieval-worker migrate" applies the PostgreSQL
// backend's schema. Run it with --help for its settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/durable-agents/reference/services/retrieval-go/app/server"
)

const program = "retrieval-worker"

func main() {
	// "retrieval-worker migrate" applies the PostgreSQL schema and exits;
	// it takes the same settings as the worker.
	args, migrate := os.Args[1:], len(os.Args) > 1 && os.Args[1] == "migrate"
	if migrate {
		args = args[1:]
	}
	load := server.LoadConfig
	if migrate {
		load = server.LoadMigrateConfig
	}
	cfg, err := load(args, nil)
	if errors.Is(err, flag.ErrHelp) {
		server.PrintUsage(os.Stdout, program)
		return
	}
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore default handling so that a second one
	// kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)

	run := server.Run
	if migrate {
		run = server.Migrate
	}
	if err := run(ctx, cfg, server.NewLogger(os.Stderr, cfg)); err != nil {
		fail(err)
	}
}

// fail reports err as the single line supervisors and people read, with no
// stack trace, and exits non-zero.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", program, strings.ReplaceAll(err.Error(), "\n", " "))
	os.Exit(1)
}
