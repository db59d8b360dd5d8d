package responder

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/status"
)

// rendered is a response ready to send, built once per cache fetch or
// live signature and then shared (by the L1 among others): never modify
// it.
type rendered struct {
	key                               string
	der                               []byte
	kind                              Kind
	thisUpdate, refreshAt, nextUpdate int64 // Unix seconds
	etag, lastModified, expires, tags []byte
	tagHeader                         string
}

// renderer turns cache entries into rendered responses
// (Config.CacheTagHeader decides the cache tags).
type renderer struct {
	tagHeader string
}

// render renders e, the response under l's key.
func (rr renderer) render(l *lookup, e *ocspcache.Entry) *rendered {
	sum := sha256.Sum256(e.DER)
	etag := make([]byte, 0, 2+24)
	etag = append(etag, '"')
	etag = hex.AppendEncode(etag, sum[:12])
	etag = append(etag, '"')
	kind := Unknown
	switch e.Status {
	case status.Good:
		kind = Good
	case status.Revoked:
		kind = Revoked
	}
	rd := &rendered{
		key: l.keyString(), der: e.DER, kind: kind,
		thisUpdate: e.ThisUpdate.Unix(), refreshAt: e.RefreshAt.Unix(), nextUpdate: e.NextUpdate.Unix(),
		etag:         etag,
		lastModified: e.ThisUpdate.UTC().AppendFormat(nil, http.TimeFormat),
		expires:      e.NextUpdate.UTC().AppendFormat(nil, http.TimeFormat),
	}
	if rd.refreshAt > rd.nextUpdate {
		rd.refreshAt = rd.nextUpdate
	}
	if rr.tagHeader != "" {
		sep := " "
		if rr.tagHeader == "Cache-Tag" {
			sep = ","
		}
		rd.tags = []byte(l.is.tags + sep + "ocsp-" + l.serialHex())
		rd.tagHeader = rr.tagHeader
	}
	return rd
}

func tagList(header string, tags ...string) string {
	if header == "Cache-Tag" {
		return strings.Join(tags, ",")
	}
	return strings.Join(tags, " ")
}
