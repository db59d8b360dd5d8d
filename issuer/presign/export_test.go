package presign

import "testing"

// SetPaging sets the rebuild's page size and how many pages it reads
// between saves of its resume point, for t's duration.
func SetPaging(t *testing.T, page, saveAfter int) {
	oldPage, oldSave := pageSize, saveEvery
	pageSize, saveEvery = page, saveAfter
	t.Cleanup(func() { pageSize, saveEvery = oldPage, oldSave })
}
