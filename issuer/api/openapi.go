package api

import (
	_ "embed"
	"io"
	"net/http"
)

// openAPI describes every /api/v1 route (OpenAPI 3.1). TestOpenAPICoversRoutes
// keeps it and the mux in step.
//
//go:embed openapi.json
var openAPI string

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, openAPI)
}
