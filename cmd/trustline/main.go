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
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/trustline/trustline/internal/cli"
)

const usage = `usage: trustline <command> [flags]

Trying it:
  dev            run every role in one process on the embedded default (README.md)

A plant (docs/deployment.md):
  init           create a plant: CA hierarchy in PostgreSQL, trustline.yaml, API keys
  api            issuance API, portal and review console     --config FILE --listen ADDR
  presigner      signs OCSP responses into Redis             --config FILE --listen ADDR
  responder      answers OCSP from Redis                     --config FILE --listen ADDR
  crlgen         builds and signs CRL shards                 --config FILE --listen ADDR
  origin         serves CRLs and issuer certificates to CDNs --config FILE --listen ADDR
  perspective    a remote network perspective (BR 3.2.2.9)  --config FILE --listen ADDR
                 (perspective keygen --out FILE: a perspective's or primary's key)
  watch          checks what relying parties receive, OCSP and CRLs, against the store
                                                             --config FILE --listen ADDR
                 (watch report --config FILE [--since 24h]: the findings, as a table)

Tools:
  ca init        key ceremony: create a CA hierarchy in an HSM (docs/ca-ceremony.md)
  ca root-crl    sign an offline root's next CRL (docs/deployment.md, "An offline root")
  audit verify   check the audit log's hash chain
  bench populate fill a dev store with N real signed certificates
  bench ocsp|crl|issue|presign|suite|peers|floor
                 load benchmarks (docs/bench.md)
  version        print the version, commit and build date

Run "trustline <command> -h" for a command's flags.
`

// version, commit and buildDate are set by the linker (make build passes
// -X main.version=… -X main.commit=… -X main.buildDate=…); otherwise the commit
// comes from the build info when Go recorded it.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// versionLine is what `trustline version` prints.
func versionLine() string {
	c, d := commit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.time":
				d = s.Value
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("trustline %s (commit %s, built %s, %s)", version, c, d, runtime.Version())
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "trustline:", err)
		}
		os.Exit(cli.ExitCode(err))
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.Usage("no command given")
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stderr)
	case "init":
		return runInit(ctx, args[1:], stdout, stderr)
	case "api":
		return runRole(ctx, "api", args[1:], stderr, runAPI)
	case "presigner":
		return runRole(ctx, "presigner", args[1:], stderr, runPresigner)
	case "responder":
		return runRole(ctx, "responder", args[1:], stderr, runResponder)
	case "crlgen":
		return runRole(ctx, "crlgen", args[1:], stderr, runCRLGen)
	case "origin":
		return runRole(ctx, "origin", args[1:], stderr, runOrigin)
	case "perspective":
		return runPerspective(ctx, args[1:], stdout, stderr)
	case "watch":
		return runWatchCommand(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "ca":
		return runCA(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return cli.Usagef("unknown command %q", args[0])
}
