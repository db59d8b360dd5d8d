package testfix

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Advance(time.Hour)
	c.Advance(-time.Minute)
	if want := t0.Add(59 * time.Minute); !c.Now().Equal(want) {
		t.Errorf("after ±: %v, want %v", c.Now(), want)
	}
	c.Set(t0.Add(-time.Hour))
	if !c.Now().Equal(t0.Add(-time.Hour)) {
		t.Errorf("after Set: %v", c.Now())
	}
}
