package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPICitesOnlyTheRepository: every file the OpenAPI document
// points a reader to exists in the repository, and it cites no planning
// notes that never ship.
func TestOpenAPICitesOnlyTheRepository(t *testing.T) {
	doc, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join("..", "..")
	cited := regexp.MustCompile(`[A-Za-z0-9_./-]+\.md\b`).FindAllString(string(doc), -1)
	if len(cited) == 0 {
		t.Error("the document points to no documentation file")
	}
	for _, f := range cited {
		if strings.Contains(f, "..") || filepath.IsAbs(f) {
			t.Errorf("cites %s, outside the repository", f)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("cites %s, which is not in the repository: %v", f, err)
		}
	}
	for _, s := range []string{"CONTRACT.md", "seed step", "the seed"} {
		if strings.Contains(string(doc), s) {
			t.Errorf("cites %q, which is not part of the repository", s)
		}
	}
}
