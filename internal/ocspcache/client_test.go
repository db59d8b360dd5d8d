package ocspcache_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
)

// clientSettings is what TestNewRedisClient compares: the options of
// either client kind that NewRedisClient decides.
type clientSettings struct {
	Cluster                 bool
	Addrs                   []string
	DB                      int
	Username, Password      string
	TLS                     bool
	Dial, Read, Write       time.Duration
	Retries, DialAttempts   int
	ReadOnly, RouteRandomly bool
	RouteByLatency          bool
	Reload                  time.Duration // cluster slot map
	ServerName              string
	TLSMinVersion           uint16
}

func settingsOf(t *testing.T, c redis.UniversalClient) clientSettings {
	t.Helper()
	tlsOf := func(cfg *tls.Config) (bool, string, uint16) {
		if cfg == nil {
			return false, "", 0
		}
		return true, cfg.ServerName, cfg.MinVersion
	}
	var s clientSettings
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		s = clientSettings{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
			Dial: o.DialTimeout, Read: o.ReadTimeout, Write: o.WriteTimeout, Retries: o.MaxRetries, DialAttempts: o.DialerRetries}
		s.TLS, s.ServerName, s.TLSMinVersion = tlsOf(o.TLSConfig)
	case *redis.ClusterClient:
		o := c.Options()
		s = clientSettings{Cluster: true, Addrs: o.Addrs, Username: o.Username, Password: o.Password,
			Dial: o.DialTimeout, Read: o.ReadTimeout, Write: o.WriteTimeout, Retries: o.MaxRetries, DialAttempts: o.DialerRetries,
			ReadOnly: o.ReadOnly, RouteRandomly: o.RouteRandomly, RouteByLatency: o.RouteByLatency,
			Reload: o.ClusterStateReloadInterval}
		s.TLS, s.ServerName, s.TLSMinVersion = tlsOf(o.TLSConfig)
	default:
		t.Fatalf("client is a %T", c)
	}
	return s
}

func TestNewRedisClient(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name    string
		url     string
		cluster bool
		want    clientSettings
		wantErr string // substring; "" means success
	}{
		{
			name: "single node",
			url:  "redis://127.0.0.1:6379/3",
			want: clientSettings{Addrs: []string{"127.0.0.1:6379"}, DB: 3, Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1},
		},
		{
			name: "single node, defaults",
			url:  "redis://",
			want: clientSettings{Addrs: []string{"localhost:6379"}, Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1},
		},
		{
			name: "single node, TLS and password",
			url:  "rediss://ocsp:s3cret@cache.example:6380",
			want: clientSettings{Addrs: []string{"cache.example:6380"}, Username: "ocsp", Password: "s3cret", TLS: true,
				ServerName: "cache.example", TLSMinVersion: tls.VersionTLS12, Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1},
		},
		{
			name: "URL overrides the timeouts",
			url:  "redis://h:1?dial_timeout=2s&read_timeout=250ms&write_timeout=1s&max_retries=3",
			want: clientSettings{Addrs: []string{"h:1"}, Dial: 2 * time.Second, Read: 250 * ms, Write: time.Second, Retries: 3, DialAttempts: 1},
		},
		{
			name:    "cluster, one seed",
			url:     "redis://10.0.0.1:7000",
			cluster: true,
			want: clientSettings{Cluster: true, Addrs: []string{"10.0.0.1:7000"},
				Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1, Reload: time.Second},
		},
		{
			name:    "cluster, three seeds",
			url:     "redis://:pw@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7001",
			cluster: true,
			want: clientSettings{Cluster: true, Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7001"},
				Password: "pw", Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1, Reload: time.Second},
		},
		{
			name:    "cluster, URL overrides",
			url:     "redis://h:1?dialer_retries=3&read_timeout=1s",
			cluster: true,
			want: clientSettings{Cluster: true, Addrs: []string{"h:1"},
				Dial: 500 * ms, Read: time.Second, Write: 500 * ms, Retries: 1, DialAttempts: 3, Reload: time.Second},
		},
		{
			name:    "cluster over IPv6",
			url:     "redis://[::1]:7000?addr=[::1]:7001",
			cluster: true,
			want: clientSettings{Cluster: true, Addrs: []string{"[::1]:7000", "[::1]:7001"},
				Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1, Reload: time.Second},
		},
		{
			name:    "cluster over TLS",
			url:     "rediss://c.example:7000/0?addr=c2.example:7000",
			cluster: true,
			want: clientSettings{Cluster: true, Addrs: []string{"c.example:7000", "c2.example:7000"}, TLS: true,
				ServerName: "c.example", TLSMinVersion: tls.VersionTLS12, Dial: 500 * ms, Read: 500 * ms, Write: 500 * ms, Retries: 1, DialAttempts: 1,
				Reload: time.Second},
		},
		{name: "other scheme", url: "http://h:1", wantErr: "scheme must be redis or rediss"},
		{name: "unix socket", url: "unix:///run/redis.sock", wantErr: "scheme must be redis or rediss"},
		{name: "no scheme", url: "h:6379", wantErr: "scheme must be redis or rediss"},
		{name: "bad database", url: "redis://h:1/x", wantErr: "invalid database number"},
		{name: "addr without cluster", url: "redis://h:1?addr=h:2", wantErr: "unexpected option: addr"},
		{name: "unknown option", url: "redis://h:1?pool=3", cluster: true, wantErr: "unexpected option: pool"},
		{name: "'@' missing", url: "redis://user:pw:6379", wantErr: "is an '@' missing?"},
		{name: "bad addr", url: "redis://h:1?addr=h2", cluster: true, wantErr: "unable to parse addr param"},
		{name: "database on a cluster", url: "redis://h:1/2", cluster: true, wantErr: "only database 0"},
		{name: "read from replicas", url: "redis://h:1?read_only=true", cluster: true, wantErr: "read_only is refused"},
		{name: "random routing", url: "redis://h:1?route_randomly=true", cluster: true, wantErr: "route_randomly is refused"},
		{name: "latency routing", url: "redis://h:1?route_by_latency=true", wantErr: "route_by_latency is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ocspcache.NewRedisClient(tc.url, tc.cluster)
			if tc.wantErr != "" {
				if err == nil {
					c.Close()
					t.Fatalf("NewRedisClient(%q) succeeded, want an error containing %q", tc.url, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewRedisClient(%q) = %v, want an error containing %q", tc.url, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRedisClient(%q): %v", tc.url, err)
			}
			defer c.Close()
			if diff := cmp.Diff(tc.want, settingsOf(t, c)); diff != "" {
				t.Errorf("NewRedisClient(%q) (-want +got):\n%s", tc.url, diff)
			}
		})
	}
}

// TestNewRedisClientHidesPassword: whatever is wrong with the URL, the
// error does not show the password.
func TestNewRedisClientHidesPassword(t *testing.T) {
	const pw = "Hunter2secret"
	for _, tc := range []struct {
		url     string
		cluster bool
	}{
		{"redis://user:" + pw + "@h:1/x", false},
		{"redis://user:" + pw + "@h:1/1/2", false},
		{"redis://user:" + pw + "@h:1?bogus=1", true},
		{"redis://user:" + pw + "@h:1?read_only=1", true},
		{"redis://user:" + pw + "@h:1/5", true},
		{"ftp://user:" + pw + "@h:1", false},
		{"redis://user:" + pw + ":6379", false},   // '@' forgotten: the password lands in the host
		{"redis://user:" + pw + ":x", true},       // ... or the port
		{"redis://user:" + pw + "%zz@h:1", false}, // bad escape
		{"redis://user:" + pw + "@h:1\n", true},   // control character
		{"redis://user:" + pw + "@[::1:6379", false},
	} {
		_, err := ocspcache.NewRedisClient(tc.url, tc.cluster)
		if err == nil {
			t.Errorf("NewRedisClient(%q) succeeded, want an error", tc.url)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("NewRedisClient error shows the password: %v", err)
		}
	}
}
