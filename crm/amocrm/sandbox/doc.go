// Package sandbox emulates one amoCRM account's v4 API for tests and demos: the same paths,
// status codes (204 for an empty list, 400 with validation-errors, 401, 404, 429) and
// hal+json shapes as the real API, seeded from YAML, with knobs to add latency, fail or
// hang requests and to act as a manager would (change a responsible user, accept or
// decline an Unsorted entry, complete a task), webhooks included.
//
// Besides reading contacts, companies, leads and users it takes the writes crmlink makes:
// contacts, leads, tasks, notes and Unsorted entries (sip and forms), and responsible changes
// by PATCH; the free-text contact query searches names, phones, emails and text fields.
// What is created is visible to the read API at once (a new contact is found by its
// number), except the contact and lead of an Unsorted entry, which appear when the entry
// is accepted. Created (GET /_sandbox/created) reads back everything clients created.
//
// A Server is an http.Handler: mount it in httptest.NewServer for in-process tests or run
// cmd/amocrm-sandbox. The control API under /_sandbox/ mirrors the Server's methods.
package sandbox
