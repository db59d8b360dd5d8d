package testenv

import (
	"errors"
	"os"
	"testing"

	"github.com/trustline/trustline/internal/pgserver"
)

// Postgres is a private PostgreSQL server a test may stop and start: the
// shared one on 5432 belongs to everyone on the machine and is never
// stopped by a test.
type Postgres struct {
	t testing.TB
	*pgserver.Server
}

// StartPostgres initialises a cluster in a scratch directory (see package
// pgserver) and starts it on a free loopback port until the test ends.
// Without the server binaries (Debian package postgresql) the test skips
// loudly, or fails under CI=true.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	dir, err := os.MkdirTemp("", "trustline-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := pgserver.Init(dir)
	if errors.Is(err, pgserver.ErrNoBinaries) {
		Missing(t, "PostgreSQL server binaries", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{t: t, Server: s}
	t.Cleanup(s.Stop)
	p.Start()
	return p
}

// URL is the server's database postgres, as the postgres user.
func (p *Postgres) URL() string { return p.Server.URL("postgres") }

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	if err := p.Server.Start(); err != nil {
		p.t.Fatal(err)
	}
}
