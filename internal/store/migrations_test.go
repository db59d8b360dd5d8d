package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	ms, err := ReadMigrations(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].Version != 1 || ms[1].SQL != "B" || ms[0].Name != "0001_a.sql" {
		t.Fatalf("ReadMigrations = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"not numbered": {"m/init.sql": {}},
		"zero":         {"m/0000_x.sql": {}},
		"duplicate":    {"m/0001_a.sql": {}, "m/1_b.sql": {}},
	} {
		if _, err := ReadMigrations(fsys, "m"); err == nil || !strings.Contains(err.Error(), "migration file") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
