package routing

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// DecideWithin asks d for a decision but never waits past ctx, and turns a panicking
// Decider into a fallback: every PBX front end calls it, so a broken or slow Decider costs
// a goroutine until it returns, never the caller's wait. Past the deadline the reason is
// "timeout"; a panic is "crm_error".
func DecideWithin(ctx context.Context, d Decider, call Call, log zerolog.Logger) Decision {
	ch := make(chan Decision, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("decider panicked; call goes to the fallback")
				ch <- FallbackDecision(ReasonCRMError)
			}
		}()
		ch <- d.Decide(ctx, call)
	}()
	select {
	case dec := <-ch:
		return dec
	case <-ctx.Done():
		select {
		case dec := <-ch: // answered right at the deadline
			return dec
		default:
		}
		log.Warn().Err(ctx.Err()).Msg("decider overran its deadline; call goes to the fallback")
		return FallbackDecision(ReasonTimeout)
	}
}
