package ari

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/clicktocall"
)

func TestClickToCallCauses(t *testing.T) {
	legs := func(causes ...int) map[string]*dialLeg {
		m := map[string]*dialLeg{}
		for i, c := range causes {
			m[string(rune('a'+i))] = &dialLeg{gone: true, cause: c}
		}
		return m
	}
	assert.Equal(t, clicktocall.ManagerNoAnswer, managerCause(legs(19)), "rang out")
	assert.Equal(t, clicktocall.ManagerNoAnswer, managerCause(legs(19, 20)), "one rang out, one offline")
	assert.Equal(t, clicktocall.ManagerBusy, managerCause(legs(17)))
	assert.Equal(t, clicktocall.ManagerBusy, managerCause(legs(21, 20)), "declined on one, the other offline")
	assert.Equal(t, clicktocall.ManagerUnreachable, managerCause(legs(20, 3)))

	assert.Equal(t, clicktocall.Completed, clientCause("ANSWER"))
	assert.Equal(t, clicktocall.ClientBusy, clientCause("BUSY"))
	assert.Equal(t, clicktocall.ClientNoAnswer, clientCause("NOANSWER"))
	assert.Equal(t, clicktocall.ClientUnreachable, clientCause("CONGESTION"))
	assert.Equal(t, clicktocall.Cancelled, clientCause("CANCEL"))
	assert.Equal(t, clicktocall.Cancelled, clientCause(""), "hung up before the client was dialled")
}
