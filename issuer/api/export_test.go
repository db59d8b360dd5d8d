package api

// Routes lists the registered route patterns ("GET /api/v1/orders").
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }
