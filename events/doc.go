// Package events is the event path's one vocabulary: the kinds of event crmlink queues
// (a call outcome, a chat event, a CRM responsible change), the typed envelope each travels
// in with its idempotency key and order key, the dispatcher that hands a stored envelope to
// the handler of its kind, and the classification of a handler's error into retry, dead
// letter or drop.
//
// An event is encoded once, when its producer hands it to the queue (Type.Encode, which
// also computes the order key), and decoded once, when the Dispatcher calls its handler.
//
// The package sits inside the rest: it imports only crm and routing (for the payload
// types it owns), so the queue, the rules engine and chatbridge all use its one Permanent
// marker without importing each other.
package events
