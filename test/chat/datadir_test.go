package chat

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	amosandbox "github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/testrig"
)

// With its data_dir full crmlink still starts and routes, and refuses the webhooks it
// cannot store with 503 so that the platforms retry; once there is room the event store
// opens by itself and the same webhooks are taken.
func TestWebhooksAnswer503UntilTheDataDirHasRoom(t *testing.T) {
	dir := testrig.SmallDisk(t, "256k")
	filler := testrig.FillDisk(t, dir)
	s := startStack(t, func(c *config.Config) {
		c.Redis.Addrs, c.Redis.DB = nil, 0
		c.DataDir = dir
	})

	resp, err := s.get("/v1/route?number=" + clientPhone)
	require.NoError(t, err)
	var d struct {
		Result string `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ROUTED", d.Result, "routing does not need the event store")

	wz, err := s.chats.WazzupReassign(context.Background(), wazzupChat, bobWazzup)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, wz.Status, "Wazzup's webhook while nothing can be stored: %+v", wz)
	amo, err := s.amo.SetResponsible(context.Background(), amosandbox.ResponsibleUpdate{Entity: "contact", ID: clientID, ResponsibleUserID: carol, ModifiedUserID: person})
	require.NoError(t, err)
	require.NotNil(t, amo.Webhook)
	assert.Equal(t, http.StatusServiceUnavailable, amo.Webhook.Status, "amoCRM's webhook while nothing can be stored: %+v", amo.Webhook)

	require.NoError(t, os.Remove(filler))
	testrig.WaitFor(t, 90*time.Second, "Wazzup's webhook taken once the disk has room", func() bool {
		wz, err := s.chats.WazzupReassign(context.Background(), wazzupChat, bobWazzup)
		return err == nil && wz.Status == http.StatusOK
	})
	testrig.WaitFor(t, 10*time.Second, "the stored reassignment reaches amoCRM", func() bool {
		return s.responsible(t, "contact", clientID) == bob
	})
}
