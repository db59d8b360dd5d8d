package ocspcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a Redis cache.
type RedisConfig struct {
	// Prefix starts every key this cache uses ("trustline:ocsp:"), so that
	// several deployments or tests can share a Redis. Required; it must
	// not contain '{' (hash tags are not used: a certificate's keys spread
	// over the cluster like any others).
	Prefix string
	// Coalesce bounds how many single-key lookups are merged into one MGET
	// (or, on Ring and Cluster, one pipeline of GETs). 0 means 128.
	Coalesce int
	// Readers is how many merged lookups may be in flight at once. 0 means 2.
	Readers int
	// WriteBatch is how many writes go in one pipeline. 0 means 512.
	WriteBatch int
	// Timeout bounds one merged lookup (its callers may give up earlier
	// through their contexts). 0 means 500 ms.
	Timeout time.Duration
	// Now is the clock; nil means time.Now. Redis expires entries by its
	// own clock (PXAT nextUpdate); Now only skips items already dead.
	Now func() time.Time
	// AckTimeout bounds how long Put waits for every other process
	// reading this cache (a responder with an L1) to confirm that it has
	// dropped the copies a write evicts. 0 means 1 s; negative means Put
	// does not wait. A reader that does not confirm in time is logged.
	AckTimeout time.Duration
}

// Validate checks cfg.
func (cfg RedisConfig) Validate() error {
	var errs []error
	if cfg.Prefix == "" || strings.ContainsAny(cfg.Prefix, "{} \r\n") {
		errs = append(errs, fmt.Errorf("ocspcache: redis: Prefix %q must be non-empty, without braces or spaces", cfg.Prefix))
	}
	if cfg.Coalesce < 0 || cfg.Readers < 0 || cfg.WriteBatch < 0 || cfg.Timeout < 0 {
		errs = append(errs, errors.New("ocspcache: redis: Coalesce, Readers, WriteBatch and Timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Redis is the production cache: one Redis key per response (value: the
// stored form in codec.go, expiring at the response's nextUpdate), one key
// holding the State, and a pub/sub channel carrying evictions.
//
// Concurrent single-key Gets (the responder's misses) are merged into one
// round trip: a single GET costs Redis about as much CPU as an MGET of
// sixteen keys (DESIGN.md, measured figures).
type Redis struct {
	cfg      RedisConfig
	client   redis.UniversalClient
	log      *slog.Logger
	mget     bool // MGET is safe: one node holds every key
	cluster  bool // a Redis Cluster: keys are placed by hash slot
	stateKey string
	channel  string

	reqs     chan *getReq
	stop     chan struct{}
	wg       sync.WaitGroup
	reqPool  sync.Pool
	stopOnce sync.Once

	subs     subscribers
	subMu    sync.Mutex
	pubsub   *redis.PubSub
	subsDone chan struct{}

	// The certs that version 2 values leave out (codec.go), by id. They
	// are content-addressed, so a remembered one never goes stale.
	certsMu sync.RWMutex
	certs   map[certsID][]byte

	// Acknowledged evictions (redisack.go).
	id       string      // this process's reader id
	live     atomic.Bool // the subscription is up: registered as a reader
	beatDone chan struct{}
}

// getReq is one coalesced single-key lookup.
type getReq struct {
	key   string
	val   string
	found bool
	err   error
	done  chan struct{} // capacity 1
}

// putScript writes one response unless the stored one is revoked and the
// new one is not (the no-downgrade rule, checked on the status octet).
// KEYS[1] key; ARGV[1] stored value; ARGV[2] expiry, Unix milliseconds.
var putScript = redis.NewScript(`
local cur = redis.call('GETRANGE', KEYS[1], 1, 1)
if cur == 'R' and string.sub(ARGV[1], 2, 2) ~= 'R' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
`)

// swapScript is SwapState: KEYS[1] state key; ARGV[1] expected stored
// value ("" for none); ARGV[2] new value.
var swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// NewRedis returns a cache over client. The client's lifetime is the
// caller's; Close stops what NewRedis started.
func NewRedis(cfg RedisConfig, client redis.UniversalClient, log *slog.Logger) (*Redis, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil || log == nil {
		return nil, errors.New("ocspcache: redis: client and log are required")
	}
	if cfg.Coalesce == 0 {
		cfg.Coalesce = 128
	}
	if cfg.Readers == 0 {
		cfg.Readers = 2
	}
	if cfg.WriteBatch == 0 {
		cfg.WriteBatch = 512
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = time.Second
	}
	_, single := client.(*redis.Client)
	_, cluster := client.(*redis.ClusterClient)
	r := &Redis{
		cfg: cfg, client: client, log: log, mget: single, cluster: cluster,
		stateKey: cfg.Prefix + "state", channel: cfg.Prefix + "evict",
		reqs: make(chan *getReq, 4*cfg.Coalesce), stop: make(chan struct{}), id: newReaderID(),
		certs: make(map[certsID][]byte),
	}
	r.reqPool.New = func() any { return &getReq{done: make(chan struct{}, 1)} }
	for range cfg.Readers {
		r.wg.Add(1)
		go r.reader()
	}
	return r, nil
}

// Close stops the coalescing readers and the eviction subscription. Gets
// and Puts must not be called after it.
func (r *Redis) Close() error {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.subMu.Lock()
		ps, done, beat := r.pubsub, r.subsDone, r.beatDone
		r.subMu.Unlock()
		if ps != nil {
			ps.Close()
			<-done
			<-beat
		}
	})
	r.wg.Wait()
	return nil
}

func (r *Redis) dataKey(k string) string { return r.cfg.Prefix + "r:" + k }

// Get implements Cache. A single key joins the next merged lookup; more
// keys are fetched together directly.
func (r *Redis) Get(ctx context.Context, keys []string, out []Entry) error {
	if len(out) != len(keys) {
		return errors.New("ocspcache: Get: len(out) != len(keys)")
	}
	if len(keys) == 1 {
		return r.getOne(ctx, keys[0], &out[0])
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.dataKey(k)
	}
	for start := 0; start < len(full); start += r.cfg.Coalesce {
		end := min(start+r.cfg.Coalesce, len(full))
		vals, found, errs := r.fetch(ctx, full[start:end])
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		for i := range vals {
			if err := r.decodeInto(ctx, &out[start+i], keys[start+i], vals[i], found[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Redis) getOne(ctx context.Context, key string, out *Entry) error {
	q := r.reqPool.Get().(*getReq)
	q.key, q.val, q.found, q.err = r.dataKey(key), "", false, nil
	select {
	case r.reqs <- q:
	case <-ctx.Done():
		r.reqPool.Put(q)
		return fmt.Errorf("ocspcache: redis: get %s: %w", key, ctx.Err())
	case <-r.stop:
		r.reqPool.Put(q)
		return errors.New("ocspcache: redis: cache closed")
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		// The reader still owns q and will signal done into its buffer;
		// leave q to the garbage collector rather than the pool.
		return fmt.Errorf("ocspcache: redis: get %s: %w", key, ctx.Err())
	}
	val, found, err := q.val, q.found, q.err
	r.reqPool.Put(q)
	if err != nil {
		return fmt.Errorf("ocspcache: redis: get %s: %w", key, err)
	}
	return r.decodeInto(ctx, out, key, val, found)
}

// decodeInto sets *out to the entry a value found under key holds, or to
// the zero Entry. A value that does not decode counts as absent; one whose
// certs cannot be read is an error, not a miss, since the cache does hold
// the response (a miss may be taken to prove the certificate unknown).
func (r *Redis) decodeInto(ctx context.Context, out *Entry, key, val string, found bool) error {
	*out = Entry{}
	if !found {
		return nil
	}
	sv, err := decodeValue(val)
	if err != nil {
		r.log.Warn("undecodable cache value, treated as absent", "key", key, "err", err)
		return nil
	}
	if !r.cfg.Now().Before(sv.NextUpdate) {
		return nil
	}
	var certs []byte
	if sv.hasCerts {
		if certs, err = r.certsFor(ctx, sv.certs); err != nil {
			return fmt.Errorf("ocspcache: redis: get %s: %w", key, err)
		}
	}
	*out = sv.entry(certs)
	return nil
}

// maxCerts bounds the certs a process remembers: one per responder
// certificate a cache holds responses of, a handful.
const maxCerts = 256

func (r *Redis) certsKey(id certsID) string { return r.cfg.Prefix + "certs:" + id.String() }

// certsFor returns the certs stored under id, remembered or read once.
func (r *Redis) certsFor(ctx context.Context, id certsID) ([]byte, error) {
	r.certsMu.RLock()
	c, ok := r.certs[id]
	r.certsMu.RUnlock()
	if ok {
		return c, nil
	}
	c, err := r.client.Get(ctx, r.certsKey(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("the certs %s its value names are missing", id)
	case err != nil:
		return nil, fmt.Errorf("reading certs %s: %w", id, err)
	case idOf(c) != id:
		return nil, fmt.Errorf("the certs stored under %s do not hash to it", id)
	}
	r.rememberCerts(id, c)
	return c, nil
}

func (r *Redis) rememberCerts(id certsID, c []byte) {
	r.certsMu.Lock()
	if len(r.certs) >= maxCerts {
		clear(r.certs)
	}
	r.certs[id] = c
	r.certsMu.Unlock()
}

// reader merges queued single-key lookups into one round trip.
func (r *Redis) reader() {
	defer r.wg.Done()
	batch := make([]*getReq, 0, r.cfg.Coalesce)
	keys := make([]string, 0, r.cfg.Coalesce)
	for {
		select {
		case q := <-r.reqs:
			batch = append(batch[:0], q)
		case <-r.stop:
			return
		}
	drain:
		for len(batch) < r.cfg.Coalesce {
			select {
			case q := <-r.reqs:
				batch = append(batch, q)
			default:
				break drain
			}
		}
		keys = keys[:0]
		for _, q := range batch {
			keys = append(keys, q.key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		vals, found, errs := r.fetch(ctx, keys)
		cancel()
		for i, q := range batch {
			if errs != nil && errs[i] != nil {
				q.err = errs[i]
			} else {
				q.val, q.found = vals[i], found[i]
			}
			q.done <- struct{}{}
		}
	}
}

// fetch reads full keys in one round trip: MGET on a single node, a
// pipeline of GETs on Ring and Cluster (which split it by node). errs is
// nil or holds each key's error: on Ring and Cluster a node that is down
// fails its own keys only, not the others merged into the same lookup.
func (r *Redis) fetch(ctx context.Context, keys []string) (vals []string, found []bool, errs []error) {
	vals = make([]string, len(keys))
	found = make([]bool, len(keys))
	if r.mget {
		res, err := r.client.MGet(ctx, keys...).Result()
		if err != nil {
			errs = make([]error, len(keys))
			for i := range errs {
				errs[i] = err
			}
			return nil, nil, errs
		}
		for i, v := range res {
			if s, ok := v.(string); ok {
				vals[i], found[i] = s, true
			}
		}
		return vals, found, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	pipe.Exec(ctx) // its error is the first command's; each command holds its own
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case err == nil:
			vals[i], found[i] = v, true
		case !errors.Is(err, redis.Nil):
			if errs == nil {
				errs = make([]error, len(keys))
			}
			errs[i] = err
		}
	}
	return vals, found, errs
}

// Put implements Cache: pipelines of the write script, WriteBatch at a
// time, then one PUBLISH of the evictions.
func (r *Redis) Put(ctx context.Context, items []Item) error {
	now := r.cfg.Now()
	var buf []byte
	for start := 0; start < len(items); start += r.cfg.WriteBatch {
		chunk := items[start:min(start+r.cfg.WriteBatch, len(items))]
		if err := r.putChunk(ctx, chunk, now, &buf); err != nil {
			return err
		}
	}
	ev := evictionsOf(items)
	if len(ev) == 0 {
		return nil
	}
	// Local readers first: they must not serve the old response once Put
	// has returned, whatever happens to the message.
	for _, p := range ev {
		r.subs.notify(Eviction{Prefix: p})
	}
	token := newReaderID()
	msg := ackLine + token + "\n" + strings.Join(ev, "\n")
	if err := r.client.Publish(ctx, r.channel, msg).Err(); err != nil {
		return fmt.Errorf("ocspcache: redis: publishing %d evictions: %w", len(ev), err)
	}
	r.awaitAcks(ctx, token, len(ev))
	return nil
}

// certsBlob is a certs element to store under its id.
type certsBlob struct {
	id    certsID
	certs []byte
}

func (r *Redis) putChunk(ctx context.Context, chunk []Item, now time.Time, buf *[]byte) error {
	values := make([]string, len(chunk))
	var certs []certsBlob // distinct
	n := 0
	for i := range chunk {
		it := &chunk[i]
		if it.DER == nil || !now.Before(it.NextUpdate) {
			continue
		}
		var c []byte
		*buf, c = appendValue((*buf)[:0], &it.Entry)
		values[i] = string(*buf)
		n++
		if c == nil {
			continue
		}
		id := idOf(c)
		if !slices.ContainsFunc(certs, func(b certsBlob) bool { return b.id == id }) {
			certs = append(certs, certsBlob{id, c})
		}
	}
	if n == 0 {
		return nil
	}
	// The certs first, in their own round trip: on a cluster they live on
	// another node than the values, and no value may be readable before
	// the certs it names. SET again each time: Redis may have restarted
	// empty since this process last wrote them.
	if len(certs) > 0 {
		pipe := r.client.Pipeline()
		for _, c := range certs {
			pipe.Set(ctx, r.certsKey(c.id), c.certs, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("ocspcache: redis: writing the responder certificates of %d responses: %w", n, err)
		}
		for _, c := range certs {
			r.rememberCerts(c.id, slices.Clone(c.certs))
		}
	}
	for attempt := 0; ; attempt++ {
		pipe := r.client.Pipeline()
		for i := range chunk {
			if values[i] != "" {
				putScript.EvalSha(ctx, pipe, []string{r.dataKey(chunk[i].Key)}, values[i], chunk[i].NextUpdate.UnixMilli())
			}
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return nil
		}
		// Scripts vanish when Redis restarts; load it once and retry.
		if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if lerr := putScript.Load(ctx, r.client).Err(); lerr != nil {
				return fmt.Errorf("ocspcache: redis: loading write script: %w", lerr)
			}
			continue
		}
		return fmt.Errorf("ocspcache: redis: writing %d responses: %w", n, err)
	}
}

// State implements Cache.
func (r *Redis) State(ctx context.Context) (State, error) {
	v, err := r.client.Get(ctx, r.stateKey).Result()
	if errors.Is(err, redis.Nil) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("ocspcache: redis: reading state: %w", err)
	}
	return decodeState(v)
}

// SwapState implements Cache.
func (r *Redis) SwapState(ctx context.Context, old, next State) error {
	if err := validState(next); err != nil {
		return err
	}
	if old != (State{}) && validState(old) != nil {
		return ErrStateChanged // no stored State is malformed
	}
	want := ""
	if old != (State{}) {
		want = encodeState(old)
	}
	ok, err := swapScript.Run(ctx, r.client, []string{r.stateKey}, want, encodeState(next)).Int()
	if err != nil {
		return fmt.Errorf("ocspcache: redis: swapping state: %w", err)
	}
	if ok != 1 {
		return ErrStateChanged
	}
	return nil
}

// Subscribe implements Cache. The first subscriber starts the pub/sub
// listener. Whenever the subscription is (re)established after a drop,
// subscribers get an Eviction with an empty Prefix: messages may have been
// lost meanwhile.
func (r *Redis) Subscribe(fn func(Eviction)) (cancel func()) {
	cancel = r.subs.add(fn)
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.pubsub == nil {
		select {
		case <-r.stop:
			return cancel
		default:
		}
		r.pubsub = r.client.Subscribe(context.Background(), r.channel)
		r.subsDone, r.beatDone = make(chan struct{}), make(chan struct{})
		go r.listen(r.pubsub, r.subsDone)
		go r.beat(r.beatDone)
	}
	return cancel
}

// listenPing is how long the listener waits for a message before it pings
// the connection, so that a silently dead connection is noticed.
const listenPing = 15 * time.Second

func (r *Redis) listen(ps *redis.PubSub, done chan struct{}) {
	defer close(done)
	ctx := context.Background()
	subscribed, missed := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, listenPing)
		select {
		case <-r.stop:
			return
		default:
		}
		if err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() {
				if perr := ps.Ping(ctx); perr == nil {
					continue
				}
			}
			if !missed {
				r.log.Warn("eviction subscription lost; in-process copies will be checked against the cache again on reconnect", "err", err)
			}
			missed = true
			r.live.Store(false)
			select {
			case <-r.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed || missed {
					r.subs.notify(Eviction{})
				}
				subscribed, missed = true, false
				r.register(ctx)
			}
		case *redis.Message:
			token := ""
			for _, p := range strings.Split(m.Payload, "\n") {
				switch {
				case strings.HasPrefix(p, ackLine):
					token = p[len(ackLine):]
				case p != "":
					r.subs.notify(Eviction{Prefix: p})
				}
			}
			if token != "" {
				r.ack(ctx, token)
			}
		}
	}
}
