// Package humanize writes values the way people write them, for text a
// person reads: API problem details, portal pages, mail bodies, command
// output. Logs and configuration files keep Go's own forms ("15m0s"),
// which parse back.
//
// It is a leaf: it imports only the standard library, and any package may
// import it.
package humanize

import (
	"strconv"
	"strings"
	"time"
)

// units are the units Duration uses, largest first. There are no weeks,
// months or years: "200 days" is how the Baseline Requirements count.
var units = []struct {
	d          time.Duration
	one, other string
}{
	{24 * time.Hour, "day", "days"},
	{time.Hour, "hour", "hours"},
	{time.Minute, "minute", "minutes"},
	{time.Second, "second", "seconds"},
	{time.Millisecond, "millisecond", "milliseconds"},
	{time.Microsecond, "microsecond", "microseconds"},
	{time.Nanosecond, "nanosecond", "nanoseconds"},
}

// Duration writes d in at most two units, the largest that fits and the
// one below it: "15 minutes", "2 hours", "200 days", "1 hour 30 minutes",
// "2 days 6 hours". As people do, it counts in hours up to two days ("24
// hours", "36 hours"). It rounds to the smaller unit shown, so 1h59m59s
// reads "2 hours". Zero is "0 seconds"; a negative duration gets a
// leading "-".
func Duration(d time.Duration) string {
	if d == 0 {
		return "0 seconds"
	}
	if d < 0 {
		if d == -1<<63 { // its negation overflows
			d++
		}
		return "-" + Duration(-d)
	}
	i := largest(d)
	if i+1 < len(units) {
		// Rounding may carry into a larger unit (59m59.6s is 1 hour).
		if r := d.Round(units[i+1].d); r > 0 {
			d = r
		}
		i = largest(d)
	}
	var b strings.Builder
	for j := i; j <= i+1 && j < len(units); j++ {
		n := d / units[j].d
		d -= n * units[j].d
		if n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(int64(n), 10))
		b.WriteByte(' ')
		if n == 1 {
			b.WriteString(units[j].one)
		} else {
			b.WriteString(units[j].other)
		}
	}
	return b.String()
}

// largest returns the index of the largest unit to write d > 0 in.
func largest(d time.Duration) int {
	if d < 2*units[0].d {
		d = min(d, units[0].d-1) // hours, not "1 day"
	}
	for i, u := range units {
		if d >= u.d {
			return i
		}
	}
	return len(units) - 1
}
