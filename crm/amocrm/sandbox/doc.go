// Package sandbox emulates one amoCRM account's v4 API for tests and demos: the same paths,
// status codes (204 for an empty list, 401, 404, 429) and hal+json shapes as the real API,
// seeded from YAML, with knobs to add latency, fail or hang requests and to change a
// responsible user the way a manager would, webhook included.
//
// A Server is an http.Handler: mount it in httptest.NewServer for in-process tests or run
// cmd/amocrm-sandbox. The control API under /_sandbox/ mirrors the Server's methods.
package sandbox
