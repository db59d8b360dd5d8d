// Package purge evicts stale objects from the caches in front of Trustline:
// a freshly published CRL (by URL), and the cached OCSP GET responses of a
// certificate just revoked (by the cache tags the responder puts on them),
// so that relying parties see the change at once instead of when the
// cached copy's max-age runs out. Purgers are pluggable: HTTP requests to a
// cache such as Varnish (HTTP: PURGE of a URL, BAN of a tag), and a generic
// webhook that POSTs JSON (Webhook), e.g. to a CDN's purge API through a
// small adapter.
//
// A Dispatcher is the crlpub.Publisher the generator calls: it only queues
// (it never blocks publication), and its workers send each purge with a
// per-attempt timeout and bounded retries with exponential backoff. A full
// queue drops the purge, logs it and counts it; the CRL is still served
// fresh once the cached copy expires.
//
// It imports the standard library and crlgen/crlpub only; cmd/ wires it.
package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
)

// Purger evicts one published CRL from somewhere.
type Purger interface {
	Purge(ctx context.Context, c crlpub.CRL) error
}

// TagPurger also evicts every object carrying a cache tag (the responder's
// Surrogate-Key / Cache-Tag values, e.g. "ocsp-<serial>").
type TagPurger interface {
	PurgeTag(ctx context.Context, tag string) error
}

// validTag keeps tags to the characters the responder produces, so a tag
// never smuggles a regular expression or a header break into the cache.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Permanent marks an error that retrying will not fix (a 4xx answer, a bad
// URL); the Dispatcher stops retrying it.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// statusError turns a non-2xx answer into an error: 4xx is Permanent
// except 408 and 429, which ask for a later try.
func statusError(what string, resp *http.Response) error {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err := fmt.Errorf("purge: %s answered %s", what, resp.Status)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout &&
		resp.StatusCode != http.StatusTooManyRequests {
		return &Permanent{err}
	}
	return err
}

// HTTP sends `PURGE <path>` to a cache, with the Host header of the CRL's
// URL so that the cache finds the object clients asked for. Varnish does
// this with `return (purge)` in vcl_recv for PURGE requests from an ACL.
type HTTP struct {
	endpoint *url.URL
	client   *http.Client
}

// NewHTTP purges through the cache at endpoint ("http://127.0.0.1:6081");
// client nil means a client with no timeout of its own (the Dispatcher's
// per-attempt context bounds each request).
func NewHTTP(endpoint string, client *http.Client) (*HTTP, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("purge: cache endpoint %q must be an http(s) URL with a host and no path", endpoint)
	}
	u.Path = ""
	if client == nil {
		client = &http.Client{}
	}
	return &HTTP{endpoint: u, client: client}, nil
}

// Purge purges c's URL path.
func (h *HTTP) Purge(ctx context.Context, c crlpub.CRL) error {
	cu, err := url.Parse(c.URL)
	if err != nil || cu.Host == "" {
		return &Permanent{fmt.Errorf("purge: CRL URL %q: %v", c.URL, err)}
	}
	target := *h.endpoint
	target.Path, target.RawPath = cu.Path, cu.RawPath
	req, err := http.NewRequestWithContext(ctx, "PURGE", target.String(), nil)
	if err != nil {
		return &Permanent{fmt.Errorf("purge: %w", err)}
	}
	req.Host = cu.Host
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("purge: PURGE %s: %w", cu.Path, err)
	}
	defer resp.Body.Close()
	return statusError("PURGE "+cu.Path+" at "+h.endpoint.Host, resp)
}

// PurgeTag sends `BAN /` with the tag in a Surrogate-Key header; the
// cache bans every object whose Surrogate-Key holds that tag. In Varnish:
//
//	if (req.method == "BAN") {
//		ban("obj.http.Surrogate-Key ~ (^| )" + req.http.Surrogate-Key + "( |$)");
//		return (synth(200, "Banned"));
//	}
func (h *HTTP) PurgeTag(ctx context.Context, tag string) error {
	if !validTag(tag) {
		return &Permanent{fmt.Errorf("purge: invalid cache tag %q", tag)}
	}
	target := *h.endpoint
	target.Path = "/"
	req, err := http.NewRequestWithContext(ctx, "BAN", target.String(), nil)
	if err != nil {
		return &Permanent{fmt.Errorf("purge: %w", err)}
	}
	req.Header.Set("Surrogate-Key", tag)
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("purge: BAN %s: %w", tag, err)
	}
	defer resp.Body.Close()
	return statusError("BAN "+tag+" at "+h.endpoint.Host, resp)
}

// Webhook POSTs a JSON description of each published CRL to a URL:
//
//	{"event":"crl.published","issuer":"int-p256","shard":3,"url":"…/3.crl",
//	 "number":…,"this_update":"…","next_update":"…","sha256":"…"}
//
// shard is -1 for a full CRL. Any 2xx answer is success.
type Webhook struct {
	url    string
	header http.Header
	client *http.Client
}

// NewWebhook posts to target, adding header to each request (an
// Authorization, say); client nil as for NewHTTP.
func NewWebhook(target string, header http.Header, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("purge: webhook %q must be an http(s) URL with a host", target)
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Webhook{url: target, header: header.Clone(), client: client}, nil
}

// WebhookEvent is the JSON body a Webhook sends.
type WebhookEvent struct {
	Event      string    `json:"event"` // "crl.published" or "tag.purge"
	Issuer     string    `json:"issuer,omitempty"`
	Shard      int       `json:"shard"`
	URL        string    `json:"url,omitempty"`
	Number     int64     `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	SHA256     string    `json:"sha256,omitempty"`
	Tag        string    `json:"tag,omitempty"`
}

// Purge posts the event for c.
func (w *Webhook) Purge(ctx context.Context, c crlpub.CRL) error {
	return w.post(ctx, WebhookEvent{
		Event: "crl.published", Issuer: string(c.Issuer), Shard: c.Shard, URL: c.URL, Number: c.Number,
		ThisUpdate: c.ThisUpdate.UTC(), NextUpdate: c.NextUpdate.UTC(), SHA256: fmt.Sprintf("%x", c.SHA256),
	})
}

// PurgeTag posts {"event":"tag.purge","tag":"ocsp-<serial>"}.
func (w *Webhook) PurgeTag(ctx context.Context, tag string) error {
	if !validTag(tag) {
		return &Permanent{fmt.Errorf("purge: invalid cache tag %q", tag)}
	}
	return w.post(ctx, WebhookEvent{Event: "tag.purge", Tag: tag, Shard: -1})
}

func (w *Webhook) post(ctx context.Context, ev WebhookEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return &Permanent{fmt.Errorf("purge: encoding webhook event: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &Permanent{fmt.Errorf("purge: %w", err)}
	}
	for k, vs := range w.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("purge: webhook: %w", err)
	}
	defer resp.Body.Close()
	return statusError("webhook", resp)
}

// Config bounds the Dispatcher's work.
type Config struct {
	// QueueSize is how many purges may wait; beyond it they are dropped.
	// Default 4096 (a full republication of 4096 shards).
	QueueSize int
	// Workers send purges concurrently. Default 4.
	Workers int
	// Attempts per purge and purger, the first included. Default 5.
	Attempts int
	// Timeout bounds each attempt. Default 5 s.
	Timeout time.Duration
	// Backoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff. Defaults 500 ms and 30 s.
	Backoff, MaxBackoff time.Duration
	// Delay holds each purge back this long after it was queued, so that
	// origins reading CRLs from the store (the plant's origin role polls
	// it) serve the new CRL before the cache refetches. 0 sends at once;
	// at most 1 min.
	Delay time.Duration
}

func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = 4096
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Backoff == 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.QueueSize < 1 || c.QueueSize > 1<<20 {
		errs = append(errs, fmt.Errorf("purge: config: QueueSize %d out of range [1, 2^20]", c.QueueSize))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("purge: config: Workers %d out of range [1, 64]", c.Workers))
	}
	if c.Delay < 0 || c.Delay > time.Minute {
		errs = append(errs, fmt.Errorf("purge: config: Delay %v out of range [0, 1m]", c.Delay))
	}
	if c.Attempts < 1 || c.Attempts > 20 {
		errs = append(errs, fmt.Errorf("purge: config: Attempts %d out of range [1, 20]", c.Attempts))
	}
	if c.Timeout <= 0 || c.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("purge: config: Timeout %v out of range (0, 1m]", c.Timeout))
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff || c.MaxBackoff > 10*time.Minute {
		errs = append(errs, fmt.Errorf("purge: config: Backoff %v and MaxBackoff %v must satisfy 0 < Backoff ≤ MaxBackoff ≤ 10m", c.Backoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// job is one purge of one CRL, or of one cache tag, by one purger.
type job struct {
	at     time.Time // when it was queued
	crl    crlpub.CRL
	tag    string // set for a tag purge
	purger Purger
}

func (j job) what() string {
	if j.tag != "" {
		return "tag " + j.tag
	}
	return j.crl.URL
}

// Dispatcher queues purges and sends them from Run's workers.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	purgers []Purger
	queue   chan job

	dropped, failed, done atomic.Int64
}

var _ crlpub.Publisher = (*Dispatcher)(nil)

// NewDispatcher sends each publication to every purger.
func NewDispatcher(cfg Config, log *slog.Logger, purgers ...Purger) (*Dispatcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("purge: no logger")
	}
	for i, p := range purgers {
		if p == nil {
			return nil, fmt.Errorf("purge: purger %d is nil", i)
		}
	}
	return &Dispatcher{cfg: cfg, log: log, purgers: purgers, queue: make(chan job, cfg.QueueSize)}, nil
}

// Published queues c for every purger and returns at once. Replayed CRLs
// changed nothing and are not purged. A full queue drops and reports it.
func (d *Dispatcher) Published(_ context.Context, c crlpub.CRL) error {
	if c.Replayed {
		return nil
	}
	var dropped int
	for _, p := range d.purgers {
		select {
		case d.queue <- job{at: time.Now(), crl: c, purger: p}:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		d.dropped.Add(int64(dropped))
		return fmt.Errorf("purge: queue full: %d purge(s) of %s dropped", dropped, c.URL)
	}
	return nil
}

// PurgeTag queues a purge of every cached object carrying tag, for every
// purger that can purge by tag, and returns at once.
func (d *Dispatcher) PurgeTag(tag string) error {
	if !validTag(tag) {
		return fmt.Errorf("purge: invalid cache tag %q", tag)
	}
	var dropped int
	for _, p := range d.purgers {
		if _, ok := p.(TagPurger); !ok {
			continue
		}
		select {
		case d.queue <- job{at: time.Now(), tag: tag, purger: p}:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		d.dropped.Add(int64(dropped))
		return fmt.Errorf("purge: queue full: %d purge(s) of tag %s dropped", dropped, tag)
	}
	return nil
}

// Stats counts purges done, failed (after every attempt) and dropped.
type Stats struct{ Done, Failed, Dropped int64 }

// Stats returns the counts so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{Done: d.done.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load()}
}

// Run sends queued purges until ctx ends; purges still queued then are
// abandoned (the caches expire them).
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-d.queue:
					d.send(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// send tries one job up to Attempts times.
func (d *Dispatcher) send(ctx context.Context, j job) {
	if hold := time.Until(j.at.Add(d.cfg.Delay)); d.cfg.Delay > 0 && hold > 0 {
		t := time.NewTimer(hold)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	wait := d.cfg.Backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		var err error
		if j.tag != "" {
			err = j.purger.(TagPurger).PurgeTag(actx, j.tag)
		} else {
			err = j.purger.Purge(actx, j.crl)
		}
		cancel()
		if err == nil {
			d.done.Add(1)
			return
		}
		var perm *Permanent
		if errors.As(err, &perm) || attempt == d.cfg.Attempts || ctx.Err() != nil {
			d.failed.Add(1)
			d.log.Warn("purge failed", "what", j.what(), "purger", fmt.Sprintf("%T", j.purger),
				"attempts", attempt, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			d.failed.Add(1)
			return
		case <-t.C:
		}
		wait = min(2*wait, d.cfg.MaxBackoff)
	}
}
