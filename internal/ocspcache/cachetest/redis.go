package cachetest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/testenv"
)

// SharedRedisAddr is the machine's Redis (DESIGN.md: tests use the real
// service).
const SharedRedisAddr = "127.0.0.1:6379"

// SharedRedis connects to database db of the machine's Redis, skipping
// the test (failing it under CI=true) when there is none. It returns a
// key prefix of the test's own; every key under it is deleted when the
// test ends, so tests may share a database but must never flush it.
func SharedRedis(t testing.TB, db int) (*redis.Client, string) {
	t.Helper()
	testenv.NeedTCP(t, "Redis", SharedRedisAddr)
	c := redis.NewClient(&redis.Options{Addr: SharedRedisAddr, DB: db})
	prefix := "tltest:" + RandomSerial()[2:14] + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		c.Close()
	})
	return c, prefix
}

// PrivateRedis is a redis-server of the test's own, without persistence,
// which the test may stop, restart (empty) and flush.
type PrivateRedis struct {
	t    testing.TB
	bin  string
	dir  string
	Addr string
	cmd  *exec.Cmd
}

// StartPrivateRedis starts a redis-server on a free loopback port. It
// skips (or, under CI=true, fails) when redis-server is not installed.
func StartPrivateRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	bin := testenv.NeedCommand(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &PrivateRedis{t: t, bin: bin, dir: t.TempDir(), Addr: addr}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start starts the server (empty: nothing is persisted) and waits until it
// accepts connections.
func (p *PrivateRedis) Start() {
	p.t.Helper()
	_, port, _ := net.SplitHostPort(p.Addr)
	p.cmd = exec.Command(p.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", p.dir, "--protected-mode", "no")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", p.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("redis-server on %s did not start", p.Addr)
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (p *PrivateRedis) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// Restart kills the server and starts it again, empty.
func (p *PrivateRedis) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

// Client returns a client of the server that the test closes at its end.
func (p *PrivateRedis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: 1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	p.t.Cleanup(func() { c.Close() })
	return c
}

// String names the server in test logs.
func (p *PrivateRedis) String() string {
	return fmt.Sprintf("redis-server %s (port %s)", p.bin, strconv.Quote(p.Addr))
}
