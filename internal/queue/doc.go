// Package queue is crmlink's durable event queue: it stores every call outcome, chat event
// and CRM webhook before the producer is answered, and hands each one to the rules engine
// at least once, retrying with backoff and parking what keeps failing in a dead-letter list
// an operator can replay.
//
// Two stores implement the same Queue: Redis Streams with a consumer group when Redis is
// configured (several crmlink instances share the work), and a segment log on local disk
// for a single instance without Redis. Both survive a crash: an event whose handler has
// not returned nil is delivered again, so handlers must be idempotent (every CRM write
// carries the event's ID as its idempotency key).
package queue
