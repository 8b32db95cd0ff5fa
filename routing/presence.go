package routing

import (
	"context"
	"fmt"
	"strings"
)

// Presence reports whether a manager's phones can ring now, usually from the PBX's endpoint
// state. It only ever answers in bools: deciding what an endpoint that cannot be checked
// (a trunk dial string such as PJSIP/79161234567@trunk) means is the implementation's call,
// and counting it as online is the safe choice.
type Presence interface {
	// EndpointsOnline answers for each endpoint, in order, on the Asterisk the call is on
	// (Call.Asterisk; "" when the front end cannot tell: FastAGI, the SIP redirect, a
	// question over HTTP). An error means "unknown", and the Router then rings every
	// endpoint: a failed presence check never blocks a call.
	EndpointsOnline(ctx context.Context, asterisk string, endpoints []string) (online []bool, err error)
}

// SystemName is the system name (asterisk.conf systemname) an Asterisk channel id or
// linkedid starts with ("asterisk-1-1796426392.45": asterisk-1), "" for an Asterisk
// without one ("1796426392.45").
func SystemName(channelID string) string {
	dot := strings.LastIndexByte(channelID, '.')
	if dot < 0 {
		return ""
	}
	dash := strings.LastIndexByte(channelID[:dot], '-')
	if dash <= 0 {
		return ""
	}
	return channelID[:dash]
}

// PresenceFunc adapts a function to Presence.
type PresenceFunc func(ctx context.Context, asterisk string, endpoints []string) ([]bool, error)

// EndpointsOnline calls f.
func (f PresenceFunc) EndpointsOnline(ctx context.Context, asterisk string, endpoints []string) ([]bool, error) {
	return f(ctx, asterisk, endpoints)
}

// Availability is a manager's manual status, set from the HTTP API or a chat command.
type Availability int

const (
	// Auto means no manual status: the schedule and phone presence decide.
	Auto Availability = iota
	// Available overrides the schedule and presence: the manager said "ring me", so every
	// endpoint rings (the CoMagic lesson: a manager's own word beats a softphone's status).
	Available
	// Unavailable always wins: the manager's calls go to the fallback.
	Unavailable
)

// String returns auto, available or unavailable.
func (a Availability) String() string {
	switch a {
	case Auto:
		return "auto"
	case Available:
		return "available"
	case Unavailable:
		return "unavailable"
	}
	return fmt.Sprintf("Availability(%d)", int(a))
}

// ParseAvailability reads auto, available or unavailable (any case).
func ParseAvailability(s string) (Availability, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return Auto, nil
	case "available":
		return Available, nil
	case "unavailable":
		return Unavailable, nil
	}
	return Auto, fmt.Errorf("availability %q: allowed: auto, available, unavailable", s)
}
