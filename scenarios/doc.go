// Package scenarios turns every call outcome into the CRM records a sales team works from,
// following the scenarios the head of sales chose in crmlink.yaml (`scenarios:`): a contact
// and a deal for a new caller, an amoCRM Unsorted entry instead, a deal for a known client
// without an open one, a call-back task for a missed call, and a call note on the right card.
//
// The engine plans first and writes second. A plan is a list of Action values computed from
// the outcome and what the CRM holds; it is stored before the first write, so a retried
// outcome (the event queue delivers at least once) carries out the same plan, skips every
// action an earlier attempt completed, and reuses the ids those actions created.
package scenarios
