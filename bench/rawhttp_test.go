package bench

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRawConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Write([]byte("0123"))
		case "/chunked":
			w.Write([]byte("abc"))
			w.(http.Flusher).Flush()
			w.Write([]byte("def"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		case "/big":
			w.Write(make([]byte, 5000))
		case "/post":
			if r.Method != "POST" || r.Header.Get("Content-Type") != "application/ocsp-request" || r.ContentLength != 3 {
				w.WriteHeader(400)
				return
			}
			w.Write([]byte("posted"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ep, err := parseEndpoint(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := newRawConn(ep, 2*time.Second, 4096)
	defer c.Close()
	for _, tc := range []struct {
		name     string
		req      []byte
		code     int
		body     string
		errorHas string
	}{
		{"content-length", renderRequest(ep, "GET", "/small", "", nil), 200, "0123", ""},
		{"chunked", renderRequest(ep, "GET", "/chunked", "", nil), 200, "abcdef", ""},
		{"304 has no body", renderRequest(ep, "GET", "/notmodified", "", nil), 304, "", ""},
		{"post", renderRequest(ep, "POST", "/post", "application/ocsp-request", []byte{1, 2, 3}), 200, "posted", ""},
		{"connection close", renderRequest(ep, "GET", "/close", "", nil), 200, "bye", ""},
		{"after the server closed", renderRequest(ep, "GET", "/small", "", nil), 200, "0123", ""},
		{"too big", renderRequest(ep, "GET", "/big", "", nil), 0, "", "exceeds"},
		{"and then fine again", renderRequest(ep, "GET", "/small", "", nil), 200, "0123", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := c.roundTrip(tc.req, time.Now())
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Fatalf("err %v, want one saying %q", err, tc.errorHas)
				}
				return
			}
			if err != nil || code != tc.code || string(body) != tc.body {
				t.Errorf("got %d %q %v, want %d %q", code, body, err, tc.code, tc.body)
			}
		})
	}
	// Keep-alive: the connection is reused until the server closes it
	// (after /close) or the bench drops it (after the oversized body).
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections for 8 requests, want 3", n)
	}
}

// An HTTP/1.0 server that answers once per connection, as `openssl
// ocsp` does, and one that never answers.
func TestRawConnHTTP10AndTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				line, _ := br.ReadString('\n')
				for {
					h, err := br.ReadString('\n')
					if err != nil || h == "\r\n" {
						break
					}
				}
				if strings.Contains(line, "/hang") {
					time.Sleep(time.Second)
					return
				}
				conn.Write([]byte("HTTP/1.0 200 OK\r\nContent-type: application/ocsp-response\r\nContent-Length: 2\r\n\r\nok"))
			}()
		}
	}()
	ep, _ := parseEndpoint("http://" + ln.Addr().String())
	c := newRawConn(ep, 200*time.Millisecond, 1024)
	defer c.Close()
	for i := range 3 {
		code, body, err := c.roundTrip(renderRequest(ep, "GET", "/x", "", nil), time.Now())
		if err != nil || code != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	_, _, err = c.roundTrip(renderRequest(ep, "GET", "/hang", "", nil), time.Now())
	if kindOf(transportFailure(err)) != "timeout" {
		t.Errorf("hang: %v", err)
	}
}

// scriptedConn is a net.Conn that answers with fixed bytes.
type scriptedConn struct {
	net.Conn // nil: other methods are not called
	r        *strings.Reader
}

func (c *scriptedConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *scriptedConn) Write(b []byte) (int, error) { return len(b), nil }
func (c *scriptedConn) SetDeadline(time.Time) error { return nil }
func (c *scriptedConn) Close() error                { return nil }

// Responses come from the server under test: the parser must never
// crash or return more than its bound.
func FuzzRawConnResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	f.Add("HTTP/1.0 200 OK\r\n\r\nuntil eof")
	f.Add("HTTP/1.1 304 Not Modified\r\n\r\n")
	f.Fuzz(func(t *testing.T, resp string) {
		c := newRawConn(endpoint{host: "x"}, time.Second, 64)
		c.conn = &scriptedConn{r: strings.NewReader(resp)}
		c.br = bufio.NewReaderSize(c.conn, 16<<10)
		_, body, err := c.exchange([]byte("GET / HTTP/1.1\r\n\r\n"), time.Now())
		if err == nil && len(body) > 64 {
			t.Errorf("body of %d octets past the 64-octet bound", len(body))
		}
	})
}
