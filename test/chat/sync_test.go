package chat

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
)

// allChats is what the client's chats should show when the CRM user with these chat ids
// is responsible.
func allChats(wazzup, chatapp string) map[string]string {
	return map[string]string{"wazzup:" + wazzupChat: wazzup, "chatapp:" + chatAppChat: chatapp}
}

func TestDealResponsibleChangedInAmoCRMReachesTheChatsWithinOneSecond(t *testing.T) {
	s := startStack(t)
	require.Equal(t, allChats(annWazzup, annChatApp), s.chatsOf(clientPhone))

	start := time.Now()
	s.personSets(t, "lead", openDeal, bob)
	testrig.WaitFor(t, time.Second-time.Since(start), "the client's chats given to Bob", func() bool {
		return equalMaps(s.chatsOf(clientPhone), allChats(bobWazzup, bobChatApp))
	})
	t.Logf("chats followed the deal in %s", time.Since(start).Round(time.Millisecond))
	// crmlink's own chat writes come back as webhooks (ChatApp posts one for every
	// change): none of them may reach amoCRM.
	waitQueueIdle(t, s)
	require.Zero(t, s.crmWrites(), "an echo of crmlink's own chat writes reached amoCRM")
	require.Equal(t, 1, s.chats.Requests("GET /v3/contacts/"+wazzupChat), "one read of the Wazzup contact per change")
	require.Equal(t, 1, s.chats.Requests("POST /v3/contacts"), "one write of the Wazzup contact per change")
}

func TestLaterChangeWinsBetweenContactAndDeal(t *testing.T) {
	s := startStack(t)
	s.personSets(t, "contact", clientID, carol)
	testrig.WaitFor(t, 2*time.Second, "Wazzup chat given to Carol (the contact changed)", func() bool {
		return s.chatsOf(clientPhone)["wazzup:"+wazzupChat] == carolWazzup
	})
	s.personSets(t, "lead", openDeal, bob)
	testrig.WaitFor(t, 2*time.Second, "chats given to Bob (the deal changed later)", func() bool {
		return equalMaps(s.chatsOf(clientPhone), allChats(bobWazzup, bobChatApp))
	})
	s.personSets(t, "contact", clientID, ann)
	testrig.WaitFor(t, 2*time.Second, "chats given back to Ann (the contact changed last)", func() bool {
		return equalMaps(s.chatsOf(clientPhone), allChats(annWazzup, annChatApp))
	})
}

func TestChatAssignmentReachesEverySelectedEntityAndDoesNotEcho(t *testing.T) {
	s := startStack(t)
	d, err := s.chats.WazzupReassign(context.Background(), wazzupChat, bobWazzup)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, d.Status, "crmlink's answer to Wazzup's webhook: %+v", d)

	testrig.WaitFor(t, 3*time.Second, "contact and open deal given to Bob in amoCRM", func() bool {
		return s.responsible(t, "contact", clientID) == bob && s.responsible(t, "lead", openDeal) == bob
	})
	waitQueueIdle(t, s)
	require.EqualValues(t, carol, s.responsible(t, "lead", wonDeal), "a closed deal keeps its responsible")
	// amoCRM reported crmlink's two writes back (modified by crmlink's user): neither may
	// come back to Wazzup as a reassignment of the chat a person just set.
	for _, a := range s.chats.Assignments() {
		if a.Platform == "wazzup" {
			require.Equal(t, "person", a.By, "crmlink echoed the change back to Wazzup: %+v", a)
		}
	}
	require.Equal(t, 2, s.crmWrites(), "one write per selected entity")
}

func TestAlternatingChatChangesSettleOnTheLastWithBoundedWrites(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	_, err := s.chats.WazzupReassign(ctx, wazzupChat, bobWazzup)
	require.NoError(t, err)
	testrig.WaitFor(t, 3*time.Second, "amoCRM follows the first change", func() bool {
		return s.responsible(t, "contact", clientID) == bob
	})
	time.Sleep(2 * time.Second) // the scenario: the second change comes 2 s later
	_, err = s.chats.WazzupReassign(ctx, wazzupChat, carolWazzup)
	require.NoError(t, err)
	testrig.WaitFor(t, 3*time.Second, "amoCRM follows the second change", func() bool {
		return s.responsible(t, "contact", clientID) == carol && s.responsible(t, "lead", openDeal) == carol
	})
	waitQueueIdle(t, s)
	require.Equal(t, carolWazzup, s.chatsOf(clientPhone)["wazzup:"+wazzupChat], "Wazzup keeps the last change")
	require.LessOrEqual(t, s.crmWrites(), 4, "two changes × two entities at most")
	require.LessOrEqual(t, s.chats.APIAssignments(), 2, "crmlink wrote to the chats at most once per change")
}

func TestChatWebhooksAreAuthenticated(t *testing.T) {
	s := startStack(t)
	tests := []struct {
		name, path, auth, body string
		want                   int
	}{
		{"wazzup without its crmKey", "/v1/chat/wazzup", "", `{"messages":[]}`, http.StatusUnauthorized},
		{"wazzup with a wrong crmKey", "/v1/chat/wazzup", "Bearer nope", `{"messages":[]}`, http.StatusUnauthorized},
		{"wazzup garbage", "/v1/chat/wazzup", "Bearer " + wazzupCRMKey, `{not json`, http.StatusBadRequest},
		{"chatapp wrong secret", "/v1/chat/chatapp/wrong-secret-0123456789", "", `{}`, http.StatusUnauthorized},
		{"jivo wrong secret", "/v1/chat/jivo/wrong-secret-0123456789", "", `{"event_name":"chat_accepted"}`, http.StatusUnauthorized},
		{"jivo garbage", "/v1/chat/jivo/" + jivoSecret, "", `[1,2`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.api+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = res.Body.Close()
			require.Equal(t, tt.want, res.StatusCode)
		})
	}
	waitQueueIdle(t, s)
	require.Zero(t, s.crmWrites()+s.chats.APIAssignments(), "a refused webhook changed something")
}

func TestChatAccessOverTheRoles(t *testing.T) {
	s := startStack(t)
	tests := []struct {
		name        string
		query       string
		status      int
		read, write bool
		role        string
	}{
		{"manager responsible for the client", "user=1001&phone=89161234567", 200, true, true, "manager"},
		{"another manager", "user=1002&phone=89161234567", 200, false, false, "manager"},
		{"manager of the client's won deal only", "user=1003&phone=89161234567", 200, false, false, "manager"},
		{"supervisor", "user=1010&phone=89161234567", 200, true, true, "supervisor"},
		{"quality control", "user=1011&phone=89161234567", 200, true, false, "quality_control"},
		{"user without a chat role", "user=55&phone=89161234567", 200, false, false, ""},
		{"no user", "phone=89161234567", 400, false, false, ""},
		{"no phone", "user=1001", 400, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.get("/v1/chat-access?" + tt.query)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, tt.status, res.StatusCode)
			if tt.status != 200 {
				return
			}
			var p struct {
				Role        string `json:"role"`
				Read, Write bool
				Reason      string `json:"reason"`
			}
			require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
			require.Equal(t, tt.role, p.Role)
			require.Equal(t, tt.read, p.Read, p.Reason)
			require.Equal(t, tt.write, p.Write, p.Reason)
		})
	}
}

// waitQueueIdle waits until crmlink's queue has nothing pending, retrying or in flight
// (echo webhooks included), as GET /v1/queue/stats reports it, for 300 ms on end; no event
// may have gone to the dead letters.
func waitQueueIdle(t *testing.T, s *stack) {
	t.Helper()
	var idleSince time.Time
	var st queue.Stats
	testrig.WaitFor(t, 10*time.Second, "crmlink's event queue idle", func() bool {
		res, err := s.get("/v1/queue/stats")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		if json.NewDecoder(res.Body).Decode(&st) != nil {
			return false
		}
		if st.Pending+st.Retrying+st.InFlight > 0 {
			idleSince = time.Time{}
			return false
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		return time.Since(idleSince) >= 300*time.Millisecond
	})
	require.Zero(t, st.Dead, "events in the dead letters: GET /v1/queue/dead")
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestChatReassignIsEnforcedByTheRoles(t *testing.T) {
	s := startStack(t)
	post := func(token, body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.api+"/v1/chat/reassign", strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	unchanged := func(what string) {
		t.Helper()
		waitQueueIdle(t, s)
		require.Zero(t, s.crmWrites()+s.chats.APIAssignments(), "%s changed something", what)
		require.EqualValues(t, ann, s.responsible(t, "contact", clientID))
	}

	require.Equal(t, http.StatusUnauthorized, post("", `{"by":1010,"phone":"89161234567","responsible":1002}`))
	require.Equal(t, http.StatusForbidden, post(apiToken, `{"by":1011,"phone":"89161234567","responsible":1002}`), "quality control writes nothing")
	require.Equal(t, http.StatusForbidden, post(apiToken, `{"by":1002,"phone":"89161234567","responsible":1002}`), "a manager may not take someone else's client")
	require.Equal(t, http.StatusBadRequest, post(apiToken, `{"by":1010,"phone":"89161234567","responsible":1011}`), "quality control cannot be responsible")
	require.Equal(t, http.StatusBadRequest, post(apiToken, `{"by":1010,"phone":"89161234567"`), "garbage")
	unchanged("a refused reassignment")

	// Ann hands her client to Bob: amoCRM and both chats follow, nothing echoes back.
	require.Equal(t, http.StatusOK, post(apiToken, `{"by":1001,"phone":"89161234567","responsible":1002}`))
	require.EqualValues(t, bob, s.responsible(t, "contact", clientID))
	require.EqualValues(t, bob, s.responsible(t, "lead", openDeal))
	require.EqualValues(t, carol, s.responsible(t, "lead", wonDeal), "a closed deal keeps its responsible")
	require.Equal(t, allChats(bobWazzup, bobChatApp), s.chatsOf(clientPhone))
	waitQueueIdle(t, s)
	require.Equal(t, 2, s.crmWrites(), "contact and open deal, written once; no echo")
	require.Equal(t, 2, s.chats.APIAssignments(), "two chats, written once; no echo")

	// Ann is no longer responsible: she may not take the client back; the supervisor may.
	require.Equal(t, http.StatusForbidden, post(apiToken, `{"by":1001,"phone":"89161234567","responsible":1001}`))
	require.Equal(t, http.StatusOK, post(apiToken, `{"by":1010,"phone":"89161234567","responsible":1001}`))
	require.Equal(t, allChats(annWazzup, annChatApp), s.chatsOf(clientPhone))
	require.EqualValues(t, ann, s.responsible(t, "lead", openDeal))
}
