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
	assert.Equal(t, int64(2), chats[bob], "Bob got the client's Wazzup and ChatApp chats")

	m, err := http.Get(s.api + "/metrics")
	require.NoError(t, err)
	defer m.Body.Close()
	body, err := io.ReadAll(m.Body)
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(body), "\n"), `crmlink_manager_chats_assigned_total{manager="`+strconv.FormatInt(bob, 10)+`"} 2`)
}
