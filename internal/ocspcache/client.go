package ocspcache

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client settings for a responder: a lookup that Redis cannot answer
// quickly is better failed (the responder falls back or answers
// tryLater) than waited for.
const (
	clientTimeout = 500 * time.Millisecond
	clientRetries = 1
	// clientDialAttempts is how many times one connection is dialled
	// before the command fails (go-redis's DialerRetries; its default, 5
	// attempts 100 ms apart, outlasts a lookup's 500 ms when a node is
	// down).
	clientDialAttempts = 1
	// clusterReload is how stale a cluster client's slot map may get.
	// go-redis learns of a failover only from a MOVED reply, which a dead
	// master never sends, or by re-reading the map (CLUSTER SLOTS, one
	// node) at this interval while in use: its default, 60 s, would leave
	// a failed master's slots unreachable for up to a minute after the
	// replica took over.
	clusterReload = time.Second
)

// NewRedisClient returns the go-redis client a Redis cache runs over, as a
// redis:// or rediss:// URL describes it:
//
//   - cluster false: one server (or a proxy), redis://[user:password@]host:port[/db],
//     parsed by redis.ParseURL; the client is a *redis.Client;
//   - cluster true: a Redis Cluster, named by one or more of its nodes,
//     redis://[user:password@]host1:port1?addr=host2:port2&addr=host3:port3,
//     parsed by redis.ParseClusterURL; the client is a *redis.ClusterClient.
//
// Dial, read and write timeouts default to 500 ms, retries to one and
// dial attempts to one; dial_timeout, read_timeout, write_timeout,
// max_retries and (cluster only) dialer_retries in the URL override them.
//
// Commands go to masters only: read_only, route_by_latency and
// route_randomly are refused, because a replica may still hold the
// response a revocation has just replaced (replication is asynchronous),
// and a responder that read it after the eviction would keep it.
//
// A cluster client re-reads the slot map every second while in use, so
// that it follows a failover within about a second of its completion.
//
// Nothing is dialled until the first command. Errors never show the
// password.
func NewRedisClient(rawURL string, cluster bool) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ocspcache: redis URL: %s", parseErrorText(err))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("ocspcache: redis URL %s: scheme must be redis or rediss", u.Redacted())
	}
	if h := u.Hostname(); strings.Contains(h, ":") && net.ParseIP(h) == nil {
		// redis://user:password:6379, the '@' forgotten, parses with the
		// password in the host name, which dial errors would then show.
		return nil, errors.New("ocspcache: redis URL: host is neither a name nor an address (is an '@' missing?)")
	}
	q := u.Query()
	set := func(name string) bool { return q.Has(name) }
	for _, name := range []string{"read_only", "route_by_latency", "route_randomly"} {
		if set(name) {
			return nil, fmt.Errorf("ocspcache: redis URL %s: %s is refused: reads must see the latest revocation, so they go to masters", u.Redacted(), name)
		}
	}
	if !cluster {
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, urlError(u, err)
		}
		applyDefaults(set, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.DialerRetries)
		return redis.NewClient(opt), nil
	}
	// ParseClusterURL ignores the path; a database number there would be
	// silently dropped (a cluster has only database 0).
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("ocspcache: redis URL %s: a cluster has only database 0, the URL names %q", u.Redacted(), p)
	}
	opt, err := redis.ParseClusterURL(rawURL)
	if err != nil {
		return nil, urlError(u, err)
	}
	applyDefaults(set, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.DialerRetries)
	opt.ClusterStateReloadInterval = clusterReload
	if opt.TLSConfig != nil && opt.TLSConfig.MinVersion == 0 {
		// As redis.ParseURL does for one server.
		opt.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return redis.NewClusterClient(opt), nil
}

// applyDefaults sets the responder's defaults where the URL (set reports
// its query parameters) did not choose.
func applyDefaults(set func(string) bool, dial, read, write *time.Duration, retries, dialAttempts *int) {
	for name, d := range map[string]*time.Duration{"dial_timeout": dial, "read_timeout": read, "write_timeout": write} {
		if !set(name) {
			*d = clientTimeout
		}
	}
	if !set("max_retries") {
		*retries = clientRetries
	}
	if !set("dialer_retries") {
		*dialAttempts = clientDialAttempts
	}
}

// urlError words a go-redis parse error with the URL's password hidden,
// in the URL and in the message.
func urlError(u *url.URL, err error) error {
	msg := err.Error()
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return fmt.Errorf("ocspcache: redis URL %s: %s", u.Redacted(), msg)
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// parseErrorText is what a URL that does not parse may show: net/url's
// reason without the URL or the fragments it quotes, either of which may
// hold the password (redis://user:secret@h:1%zz fails with `invalid URL
// escape "%zz"`, and a password may hold a '%').
func parseErrorText(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return quoted.ReplaceAllString(err.Error(), `"…"`)
}
