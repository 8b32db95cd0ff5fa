// Package amocrm talks to one amoCRM account over the v4 REST API: it answers the read side
// of crm.Directory (contacts by phone, leads, companies, users) within the caller's deadline,
// spends the account's shared request budget with call-path lookups ahead of background work,
// and turns amoCRM's form-encoded webhooks into crm.ResponsibleChange values.
//
// The same code talks to a real account and to the emulator in package sandbox; only
// Options.BaseURL differs.
package amocrm
