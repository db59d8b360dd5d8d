package ocspcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
)

// Acknowledged evictions. A responder keeps responses in an in-process L1
// and drops them when an eviction arrives on the pub/sub channel; without
// more, a revocation reaches another machine's L1 "soon" rather than
// before the revoking call returns. So every process reading the cache
// registers as a reader (a hash of reader id → registration expiry,
// renewed while its subscription is up), eviction messages carry a token,
// each reader adds its id to the token's set once it has dropped the
// copies, and Put returns when every registered reader has done so, or
// after AckTimeout (a reader killed a moment ago stays registered for up
// to readerTTL; it is logged and not waited for again once it lapses).

const (
	// ackLine starts the eviction message's first line, which names the
	// acknowledgement token. Eviction prefixes never start with '!'.
	ackLine = "!ack:"
	// readerBeat is how often a reader renews its registration, and
	// readerTTL how long one lasts unrenewed.
	readerBeat = 2 * time.Second
	readerTTL  = 3 * readerBeat
	// readerForget is how long after expiring a registration is deleted
	// by the next writer that sees it.
	readerForget = time.Minute
	// ackTTL is how long a token's set of acknowledgements lives.
	ackTTL = 30 * time.Second
)

func newReaderID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *Redis) readersKey() string         { return r.cfg.Prefix + "readers" }
func (r *Redis) ackKey(token string) string { return r.cfg.Prefix + "ack:" + token }

// register records this process as a reader, from now for readerTTL. It
// runs when the subscription is (re)established, before any message.
func (r *Redis) register(ctx context.Context) {
	r.live.Store(true)
	exp := time.Now().Add(readerTTL).UnixMilli()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.client.HSet(ctx, r.readersKey(), r.id, exp).Err(); err != nil {
		r.log.Warn("registering as an eviction reader", "err", err)
	}
}

// beat renews the registration while the subscription is up, and removes
// it when the cache closes.
func (r *Redis) beat(done chan struct{}) {
	defer close(done)
	t := time.NewTicker(readerBeat)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
			r.client.HDel(ctx, r.readersKey(), r.id)
			cancel()
			return
		case <-t.C:
			if r.live.Load() {
				r.register(context.Background())
			}
		}
	}
}

// ack tells the writer of token that this process dropped the copies.
func (r *Redis) ack(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	pipe.SAdd(ctx, r.ackKey(token), r.id)
	pipe.PExpire(ctx, r.ackKey(token), ackTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		r.log.Warn("acknowledging an eviction", "err", err)
	}
}

// awaitAcks waits until every registered reader but this process (told
// directly before the message went out) has acknowledged token, or
// AckTimeout passes. Failing to learn the readers is logged: the write
// stands either way.
func (r *Redis) awaitAcks(ctx context.Context, token string, evictions int) {
	if r.cfg.AckTimeout < 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	regs, err := r.client.HGetAll(ctx, r.readersKey()).Result()
	if err != nil {
		r.log.Warn("listing eviction readers; not waiting for them", "err", err)
		return
	}
	now := time.Now().UnixMilli()
	want := map[string]bool{}
	var forget []string
	for id, v := range regs {
		exp, _ := strconv.ParseInt(v, 10, 64)
		switch {
		case id == r.id:
		case exp < now-readerForget.Milliseconds():
			forget = append(forget, id)
		case exp >= now:
			want[id] = true
		}
	}
	if len(forget) > 0 {
		r.client.HDel(ctx, r.readersKey(), forget...)
	}
	pause := time.Millisecond
	for len(want) > 0 {
		got, err := r.client.SMembers(ctx, r.ackKey(token)).Result()
		if err == nil {
			for _, id := range got {
				delete(want, id)
			}
			if len(want) == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.log.Warn("eviction readers did not confirm in time: they may serve the replaced responses a little longer",
				"readers", len(want), "evictions", evictions, "waited", time.Since(start).Round(time.Millisecond), "err", err)
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}
