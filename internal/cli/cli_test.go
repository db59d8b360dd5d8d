package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
)

func TestParse(t *testing.T) {
	newFS := func() (*flag.FlagSet, *int) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.Int("n", 1, "")
	}
	fs, n := newFS()
	if err := Parse(fs, []string{"-n", "3"}); err != nil || *n != 3 {
		t.Fatalf("Parse = %v, n = %d", err, *n)
	}
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"-n", "x"}, 2},
		{[]string{"-nope"}, 2},
		{[]string{"stray"}, 2},
		{[]string{"-h"}, 2},
	}
	for _, tc := range tests {
		fs, _ := newFS()
		err := Parse(fs, tc.args)
		if got := ExitCode(fmt.Errorf("wrapped: %w", err)); got != tc.code {
			t.Errorf("%v: exit %d (%v), want %d", tc.args, got, err, tc.code)
		}
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("boom")) != 1 || ExitCode(Usagef("bad %d", 1)) != 2 {
		t.Error("ExitCode of nil, a plain error and a usage error")
	}
}
