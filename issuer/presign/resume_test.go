package presign

import (
	"testing"

	"github.com/trustline/trustline/internal/serial"
)

// TestResumePointOnlyCoversAWrittenPrefix: batches written out of order
// move the resume point only over those emitted before every unwritten
// one.
func TestResumePointOnlyCoversAWrittenPrefix(t *testing.T) {
	rb := &rebuild{p: &Pipeline{}}
	rb.p.progress.Store(&Progress{})
	r := &rb.resume
	r.rb = rb
	emit := r.tracking(func([]cert) error { return nil })
	for _, last := range []serial.Serial{"10", "20", "30", "40"} {
		if err := emit([]cert{{Serial: "01"}, {Serial: last}}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		written serial.Serial
		want    serial.Serial
	}{
		{"30", ""},   // 10 and 20 still in flight
		{"10", "10"}, // 20 still in flight
		{"40", "10"},
		{"20", "40"}, // the whole prefix is written
	}
	for _, s := range steps {
		r.written(2, 4, s.written)
		if got := r.point(); got != s.want {
			t.Fatalf("after %s written: point %q, want %q", s.written, got, s.want)
		}
	}
	if len(r.pending) != 0 {
		t.Errorf("%d batches still pending", len(r.pending))
	}
	if got := rb.p.Progress(); got.Done != 8 || got.Responses != 16 {
		t.Errorf("Progress %+v, want 8 certificates and 16 responses", got)
	}
}
