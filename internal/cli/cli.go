// Package cli is how every trustline command reads its command line: flag
// sets parsed strictly (no stray arguments), mistakes as UsageErrors, and
// the exit status they map to. The bench commands and cmd/trustline share
// it. Standard library only.
package cli

import (
	"errors"
	"flag"
	"fmt"
)

// UsageError is a command-line mistake: exit status 2, with the message
// and the command's usage.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usage returns a UsageError saying msg.
func Usage(msg string) error { return UsageError{Msg: msg} }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error { return UsageError{Msg: fmt.Sprintf(format, args...)} }

// Parse parses args into fs, which must use flag.ContinueOnError: a bad
// flag or a stray argument is a UsageError, and -h passes flag.ErrHelp
// through.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// ExitCode is the process's exit status for err: 0 for nil, 2 for a
// usage mistake or -h, 1 for anything else.
func ExitCode(err error) int {
	var u UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u), errors.Is(err, flag.ErrHelp):
		return 2
	}
	return 1
}
