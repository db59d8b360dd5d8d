// Package deptest holds only a test: the dependency rules of DESIGN.md and
// STYLE.md §13, checked with `go list -deps`.
package deptest
