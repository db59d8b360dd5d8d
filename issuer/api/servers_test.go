package api_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// testWeb serves http-token files on loopback, for any Host.
type testWeb struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string]webAnswer // by path
	hosts []string             // Host headers seen
}

type webAnswer struct {
	status   int
	body     string
	location string
}

func startWeb(t testing.TB) *testWeb {
	t.Helper()
	web := &testWeb{files: map[string]webAnswer{}}
	web.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.mu.Lock()
		ans, ok := web.files[r.URL.Path]
		web.hosts = append(web.hosts, r.Host)
		web.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if ans.location != "" {
			w.Header().Set("Location", ans.location)
		}
		if ans.status == 0 {
			ans.status = http.StatusOK
		}
		w.WriteHeader(ans.status)
		w.Write([]byte(ans.body))
	}))
	t.Cleanup(web.srv.Close)
	return web
}

func (w *testWeb) port() string {
	_, p, _ := net.SplitHostPort(w.srv.Listener.Addr().String())
	return p
}

func (w *testWeb) seenHosts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.hosts...)
}

func (w *testWeb) serve(path string, a webAnswer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files[path] = a
}

// testWhois is an RFC 3912 server on loopback: it reads one line and
// answers with the reply set for it.
type testWhois struct {
	ln      net.Listener
	mu      sync.Mutex
	replies map[string]string
	queries []string
}

func startWhois(t testing.TB) *testWhois {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &testWhois{ln: ln, replies: map[string]string{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				q := strings.TrimRight(line, "\r\n")
				w.mu.Lock()
				w.queries = append(w.queries, q)
				reply, ok := w.replies[q]
				w.mu.Unlock()
				if !ok {
					reply = "No match for \"" + strings.ToUpper(q) + "\".\r\n"
				}
				c.Write([]byte(reply))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return w
}

func (w *testWhois) asked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.queries...)
}

func (w *testWhois) set(domain, reply string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replies[domain] = reply
}
