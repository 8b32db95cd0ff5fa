package chat

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	chatsandbox "github.com/crmlink/crmlink/chatbridge/sandbox"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/internal/testrig"
)

// shortTokens gives ChatApp's tokens lifetimes a test can outlive: ChatApp's own are 24
// hours and 14 days.
func shortTokens(access, refresh time.Duration) func(*chatsandbox.Seed) {
	return func(s *chatsandbox.Seed) { s.ChatApp.AccessTTL, s.ChatApp.RefreshTTL = access, refresh }
}

// chatAppFollows has a person give the open deal to user and waits for the client's
// ChatApp chat to follow.
func (s *stack) chatAppFollows(t *testing.T, user int64, chatUser string) {
	t.Helper()
	s.personSets(t, "lead", openDeal, user)
	testrig.WaitFor(t, 3*time.Second, "ChatApp chat given to "+chatUser, func() bool {
		return s.chatsOf(clientPhone)["chatapp:"+chatAppChat] == chatUser
	})
}

// waitAccessExpired waits until ChatApp takes none of the access tokens it issued.
func (s *stack) waitAccessExpired(t *testing.T) {
	t.Helper()
	testrig.WaitFor(t, 5*time.Second, "ChatApp's access tokens expired", func() bool {
		a, _ := s.chats.ChatAppLiveTokens()
		return a == 0
	})
}

func TestChatAppSyncKeepsWorkingAcrossTokenExpiries(t *testing.T) {
	const accessTTL, refreshTTL = 700 * time.Millisecond, 2500 * time.Millisecond
	s := startStackSeeded(t, shortTokens(accessTTL, refreshTTL))
	makes := func() int { return s.chats.Requests("POST /v1/tokens") }
	refreshes := func() int { return s.chats.Requests("POST /v1/tokens/refresh") }
	chatPath := "/v1/licenses/" + license + "/messengers/grWhatsApp/chats/" + clientDigits
	puts := func() int {
		return s.chats.Requests("PUT /v1/licenses/" + license + "/messengers/grWhatsApp/chats/" + clientDigits + "/responsible")
	}

	s.chatAppFollows(t, bob, bobChatApp)
	require.Equal(t, 1, makes(), "the first sync signs in with tokens.make")

	// Three access-token expiries: each renewed with tokens.refresh, never tokens.make.
	for i, u := range []struct {
		crm  int64
		chat string
	}{{ann, annChatApp}, {bob, bobChatApp}, {ann, annChatApp}} {
		s.waitAccessExpired(t)
		s.chatAppFollows(t, u.crm, u.chat)
		require.Equal(t, i+1, refreshes(), "access token renewed with tokens.refresh after expiry %d", i+1)
		require.Equal(t, 1, makes(), "no new tokens.make while the refresh token lives")
	}

	// The pair is stored (Redis): a restarted crmlink goes on with it.
	s.restart(t)
	s.chatAppFollows(t, bob, bobChatApp)
	require.Equal(t, 1, makes(), "a restart reuses the stored pair")

	// The refresh token expires too (crmlink idle longer than its lifetime): a new pair.
	testrig.WaitFor(t, 2*refreshTTL, "ChatApp's refresh tokens expired", func() bool {
		_, r := s.chats.ChatAppLiveTokens()
		return r == 0
	})
	s.chatAppFollows(t, ann, annChatApp)
	require.Equal(t, 2, makes(), "an expired refresh token is replaced by tokens.make")

	// ChatApp drops a token before its end time: ApiInvalidTokenError, one refresh, the
	// request sent again.
	before := refreshes()
	s.chats.ChatAppDropAccessTokens()
	s.chatAppFollows(t, bob, bobChatApp)
	require.Equal(t, before+1, refreshes(), "ApiInvalidTokenError renewed the pair once")

	waitQueueIdle(t, s)
	require.Equal(t, 7, puts(), "one ChatApp write per change")
	require.Equal(t, 7+1, s.chats.Requests("GET "+chatPath),
		"one chat read per change, plus the one ChatApp refused after dropping the token: tokens are renewed before they expire")
	require.Zero(t, s.queueStats(t).Failures, "no sync failed (a failure is retried by the queue and counted)")
	ok, detail := s.chatAppHealth(t)
	require.True(t, ok, detail)
}

func TestRevokedChatAppPasswordShowsInHealthz(t *testing.T) {
	s := startStack(t)
	s.chatAppFollows(t, bob, bobChatApp)
	ok, detail := s.chatAppHealth(t)
	require.True(t, ok, detail)

	s.chats.ChatAppSetPassword("changed-in-the-cabinet")
	s.personSets(t, "lead", openDeal, ann)
	testrig.WaitFor(t, 5*time.Second, "/healthz reports the refused password", func() bool {
		ok, _ := s.chatAppHealth(t)
		return !ok
	})
	_, detail = s.chatAppHealth(t)
	require.Contains(t, detail, "chat.platforms[1].password: ChatApp refused the email, password or app_id")
	require.NotContains(t, detail, chatsandbox.DefaultChatAppPassword, "the password is never shown")
}

// queueStats reads GET /v1/queue/stats.
func (s *stack) queueStats(t *testing.T) queue.Stats {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.api+"/v1/queue/stats", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var st queue.Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// chatAppHealth reads the chat_chatapp check of /healthz.
func (s *stack) chatAppHealth(t *testing.T) (bool, string) {
	t.Helper()
	resp, err := http.Get(s.api + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h struct {
		Checks map[string]struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	c, found := h.Checks["chat_chatapp"]
	require.True(t, found, "/healthz has no chat_chatapp check: %+v", h.Checks)
	return c.OK, c.Detail
}
