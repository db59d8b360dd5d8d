// Command trustline is the one binary of Trustline: the all-in-one dev
// process, the CA ceremony, audit verification and the bench suite. All
// wiring of Trustline's parts happens here and nowhere else (STYLE.md §14).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: trustline <command> [flags]

commands:
  dev            run everything in one process on the embedded default (CONTRACT.md)
  ca init        key ceremony: create the CA hierarchy in an HSM (--config FILE)
  audit verify   check the audit log's hash chain
  bench populate fill a dev store with N real signed certificates
  bench ocsp|crl|issue|presign|suite|peers|floor
                 load benchmarks (docs/bench.md)
  version    print the version

Run "trustline <command> -h" for a command's flags.
`

// version is set by the linker (-X main.version=…) in release builds.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "trustline:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "ca":
		return runCA(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "trustline", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
