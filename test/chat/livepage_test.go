package chat

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/internal/testrig"
)

// TestChatsGivenToAManagerCountOnTheLivePage: the responsible sync's chat writes are the
// "chats assigned" of the live page's figures and of crmlink_manager_chats_assigned_total.
func TestChatsGivenToAManagerCountOnTheLivePage(t *testing.T) {
	s := startStack(t)
	s.personSets(t, "lead", openDeal, bob)
	testrig.WaitFor(t, 5*time.Second, "the client's chats given to Bob", func() bool {
		return equalMaps(s.chatsOf(clientPhone), allChats(bobWazzup, bobChatApp))
	})
	waitQueueIdle(t, s)

	chats := todayChats(t, s)
	assert.Equal(t, int64(2), chats[bob], "Bob got the client's Wazzup and ChatApp chats")

	m, err := http.Get(s.api + "/metrics")
	require.NoError(t, err)
	defer m.Body.Close()
	body, err := io.ReadAll(m.Body)
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(body), "\n"), `crmlink_manager_chats_assigned_total{manager="`+strconv.FormatInt(bob, 10)+`"} 2`)
}

// TestJivoLeadsCountAsChatsAssigned: an online chat whose lead goes to a manager counts as
// a chat assigned to them.
func TestJivoLeadsCountAsChatsAssigned(t *testing.T) {
	s := startStack(t, withLeads(intake.MatchAny))
	for i, v := range []jivoVisitor{{Name: "First", Phone: "+79260000001"}, {Name: "Second", Email: "second@example.com"}} {
		s.postJivo(t, 9301+i, v)
		testrig.WaitFor(t, 5*time.Second, "the new client's lead", func() bool { return len(s.amo.Created().Leads) == i+1 })
	}
	waitQueueIdle(t, s)
	chats := todayChats(t, s)
	assert.Equal(t, int64(1), chats[ann])
	assert.Equal(t, int64(1), chats[bob])
}

// todayChats reads the chats assigned per manager from the live page's state.
func todayChats(t *testing.T, s *stack) map[int64]int64 {
	t.Helper()
	res, err := s.get("/ui/api/state")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var state struct {
		Today []struct {
			Manager int64 `json:"manager"`
			Chats   int64 `json:"chats"`
		} `json:"today"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&state))
	chats := map[int64]int64{}
	for _, f := range state.Today {
		chats[f.Manager] = f.Chats
	}
	return chats
}
