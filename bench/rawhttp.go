package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"
)

// rawConn is the OCSP load generator's HTTP/1.1 client: one connection,
// requests written as pre-rendered bytes, answers parsed just enough
// (status, Content-Length or chunked, Connection). It costs less per
// request than a general client, so that on a shared machine the
// generator, not the responder, is less often what is measured. It
// reconnects when the server closes (HTTP/1.0 servers such as `openssl
// ocsp` close after every answer).
type rawConn struct {
	ep      endpoint
	timeout time.Duration
	maxBody int
	conn    net.Conn
	br      *bufio.Reader
	body    []byte
}

func newRawConn(ep endpoint, timeout time.Duration, maxBody int) *rawConn {
	return &rawConn{ep: ep, timeout: timeout, maxBody: maxBody}
}

// renderRequest renders a GET (body nil) or POST request for ep.
func renderRequest(ep endpoint, method, target, contentType string, body []byte) []byte {
	b := make([]byte, 0, len(target)+len(body)+128)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, ep.host...)
	if body != nil {
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, contentType...)
		b = append(b, "\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

func (c *rawConn) dial() error {
	conn, err := net.DialTimeout("tcp", c.ep.addr, c.timeout)
	if err != nil {
		return err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if c.ep.tls {
		host, _, _ := net.SplitHostPort(c.ep.addr)
		tconn := tls.Client(conn, &tls.Config{ServerName: host})
		tconn.SetDeadline(time.Now().Add(c.timeout))
		if err := tconn.Handshake(); err != nil {
			conn.Close()
			return err
		}
		conn = tconn
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

// Close closes the connection.
func (c *rawConn) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// roundTrip sends req and returns the status and body; the body is valid
// until the next call. A request on a reused connection that the server
// had closed is retried once on a new one.
func (c *rawConn) roundTrip(req []byte, now time.Time) (int, []byte, error) {
	reused := c.conn != nil
	if !reused {
		if err := c.dial(); err != nil {
			return 0, nil, err
		}
	}
	code, body, err := c.exchange(req, now)
	if err != nil && reused && isStale(err) {
		c.Close()
		if err := c.dial(); err != nil {
			return 0, nil, err
		}
		code, body, err = c.exchange(req, now)
	}
	if err != nil {
		c.Close()
	}
	return code, body, err
}

// isStale reports an error that means the server had closed an idle
// connection before this request reached it.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, errConnReset)
}

var errConnReset = errors.New("connection reset before an answer")

func (c *rawConn) exchange(req []byte, now time.Time) (int, []byte, error) {
	c.conn.SetDeadline(now.Add(c.timeout))
	if _, err := c.conn.Write(req); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errConnReset, err)
	}
	line, err := c.readLine()
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, fmt.Errorf("bench: malformed status line %q", clip(string(line), 60))
	}
	http10 := line[7] == '0'
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bench: malformed status line %q", clip(string(line), 60))
	}
	length, chunked, keepAlive := -1, false, !http10
	for {
		h, err := c.readLine()
		if err != nil {
			return 0, nil, err
		}
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("bench: malformed header line %q", clip(string(h), 60))
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "content-length"):
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 {
				return 0, nil, fmt.Errorf("bench: bad Content-Length %q", v)
			}
			length = n
		case asciiEqualFold(k, "transfer-encoding"):
			chunked = asciiEqualFold(v, "chunked")
		case asciiEqualFold(k, "connection"):
			if asciiEqualFold(v, "close") {
				keepAlive = false
			} else if asciiEqualFold(v, "keep-alive") {
				keepAlive = true
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case code == 204 || code == 304 || (code >= 100 && code < 200):
	case chunked:
		if err := c.readChunked(); err != nil {
			return 0, nil, err
		}
	case length >= 0:
		if length > c.maxBody {
			return 0, nil, fmt.Errorf("bench: body of %d octets exceeds %d", length, c.maxBody)
		}
		c.body = grow(c.body, length)
		if _, err := io.ReadFull(c.br, c.body); err != nil {
			return 0, nil, err
		}
	default: // until the server closes
		keepAlive = false
		b, err := io.ReadAll(io.LimitReader(c.br, int64(c.maxBody)+1))
		if err != nil {
			return 0, nil, err
		}
		if len(b) > c.maxBody {
			return 0, nil, fmt.Errorf("bench: body exceeds %d octets", c.maxBody)
		}
		c.body = b
	}
	if !keepAlive {
		c.Close()
	}
	return code, c.body, nil
}

func (c *rawConn) readChunked() error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("bench: bad chunk size %q", clip(string(line), 30))
		}
		if n == 0 {
			for { // trailers
				t, err := c.readLine()
				if err != nil || len(t) == 0 {
					return err
				}
			}
		}
		if len(c.body)+int(n) > c.maxBody {
			return fmt.Errorf("bench: body exceeds %d octets", c.maxBody)
		}
		start := len(c.body)
		c.body = grow(c.body, start+int(n))
		if _, err := io.ReadFull(c.br, c.body[start:]); err != nil {
			return err
		}
		if crlf, err := c.readLine(); err != nil || len(crlf) != 0 {
			return fmt.Errorf("bench: malformed chunk end")
		}
	}
}

// readLine reads one CRLF- (or LF-) terminated line without it. Lines
// longer than the reader's buffer are refused.
func (c *rawConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("bench: header line too long")
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// grow returns b resized to n, keeping its contents.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		b = slices.Grow(b, n-len(b))
	}
	return b[:n]
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
