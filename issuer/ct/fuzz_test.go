package ct

import (
	"testing"
	"time"
)

// FuzzParseLogList: any log list either parses into logs whose ids are
// their keys' hashes and whose intervals are not empty, or is refused.
func FuzzParseLogList(f *testing.F) {
	f.Add([]byte(`{"operators": []}`))
	f.Add([]byte(`{"operators": [{"name": "A", "logs": [{"log_id": "AAAA", "key": "AAAA", "url": "https://x/"}]}]}`))
	f.Add([]byte(`{"operators": [{"name": "A", "tiled_logs": [{"submission_url": "http://127.0.0.1:1/", "temporal_interval": {"start_inclusive": "2027-01-01T00:00:00Z", "end_exclusive": "2026-01-01T00:00:00Z"}}]}]}`))
	f.Add([]byte(`{"operators": 3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		logs, err := ParseLogList(data)
		if err != nil {
			return
		}
		for _, l := range logs {
			if l.Key == nil || l.Operator == "" || l.URL == "" {
				t.Fatalf("a log parsed incomplete: %+v", l)
			}
			if !l.NotAfterLimit.IsZero() && !l.NotAfterLimit.After(l.NotAfterStart) {
				t.Fatalf("an empty interval accepted: %+v", l)
			}
			_ = l.Accepts(time.Now())
		}
	})
}
