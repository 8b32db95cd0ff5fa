// Package events is the event path's one vocabulary: the Outbox producers hand events to,
// the kinds of event crmlink queues (a call outcome, a chat event, a CRM responsible
// change), the typed envelope each travels
// in with its idempotency key and order key, the dispatcher that hands a stored envelope to
// the handler of its kind, and the classification of a handler's error into retry, dead
// letter or drop; and the executor of an event's stored plan and its steps (Steps), with
// the State it keeps them in (memory, an fsynced file, or Redis), which the call scenarios
// and the chat intake both run on. The envelope's idempotency key names the event; the CRM
// itself has none, so the executor's records, and a lookup before repeating the one step an
// interrupted attempt may have written (RunOnce), are what keep a repeat from writing twice.
//
// An event is encoded once, when its producer hands it to the queue (Type.Encode, which
// also computes the order key), and decoded once, when the Dispatcher calls its handler.
//
// The package sits inside the rest: it imports only crm and routing (for the payload
// types it owns), so the queue, the call scenarios and chatbridge all use its one Permanent
// marker and its one executor without importing each other.
package events
