package ari

import (
	"testing"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wireChannelJSON = `{"id":"1733-1","name":"PJSIP/trunk-00000001","state":"Ring","protocol_id":"abc",
"caller":{"name":"","number":"+79001234567"},"connected":{"name":"","number":""},"accountcode":"",
"dialplan":{"context":"from-trunk","exten":"201","priority":3,"app_name":"Stasis","app_data":"crmlink,incoming"},
"creationtime":"2026-12-05T21:00:00.000+0000","language":"en","channelvars":{"CHANNEL(linkedid)":"1733-1","CRMLINK_RESULT":""}}`

func TestDecodeEventReadsWhatTheControllerUses(t *testing.T) {
	tests := []struct {
		name string
		msg  string
	}{
		{"StasisStart", `{"type":"StasisStart","timestamp":"2026-12-05T21:00:00.001+0000","args":["incoming"],"channel":` + wireChannelJSON + `,"asterisk_id":"02:42","application":"crmlink"}`},
		{"StasisEnd", `{"type":"StasisEnd","timestamp":"2026-12-05T21:00:00.001+0000","channel":` + wireChannelJSON + `,"application":"crmlink"}`},
		{"ChannelDestroyed", `{"type":"ChannelDestroyed","cause":16,"cause_txt":"Normal Clearing","channel":` + wireChannelJSON + `,"application":"crmlink"}`},
		{"Dial", `{"type":"Dial","dialstatus":"ANSWER","dialstring":"bench-mgr1","caller":` + wireChannelJSON + `,"peer":{"id":"1733-2","name":"PJSIP/101-00000002","state":"Up"},"application":"crmlink"}`},
		{"ChannelUserevent", `{"type":"ChannelUserevent","eventname":"crmlink-fallback","userevent":{"reason":"owner_unavailable"},"channel":` + wireChannelJSON + `,"application":"crmlink"}`},
		{"another type, through the ari library", `{"type":"ChannelVarset","variable":"X","value":"1","channel":` + wireChannelJSON + `,"application":"crmlink"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := ari.DecodeEvent([]byte(tt.msg))
			require.NoError(t, err)
			got, err := decodeEvent([]byte(tt.msg))
			require.NoError(t, err)
			assert.Equal(t, want.GetType(), got.GetType())
			assert.Equal(t, channelIDs(want), channelIDs(got))
			switch w := want.(type) {
			case *ari.StasisStart:
				g := got.(*ari.StasisStart)
				assert.Equal(t, w.Args, g.Args)
				assert.Equal(t, w.Channel.Name, g.Channel.Name)
				assert.Equal(t, w.Channel.State, g.Channel.State)
				assert.Equal(t, w.Channel.Caller, g.Channel.Caller)
				assert.Equal(t, w.Channel.Dialplan, g.Channel.Dialplan)
				assert.Equal(t, w.Node, g.Node)
			case *ari.ChannelDestroyed:
				assert.Equal(t, w.Cause, got.(*ari.ChannelDestroyed).Cause)
			case *ari.Dial:
				g := got.(*ari.Dial)
				assert.Equal(t, w.Dialstatus, g.Dialstatus)
				assert.Equal(t, w.Peer.ID, g.Peer.ID)
				assert.Equal(t, w.Peer.Name, g.Peer.Name)
			case *ari.ChannelUserevent:
				g := got.(*ari.ChannelUserevent)
				assert.Equal(t, w.Eventname, g.Eventname)
				assert.Equal(t, w.Userevent, g.Userevent)
			}
		})
	}
}

func TestDecodeEventRejectsWhatIsNotJSON(t *testing.T) {
	_, err := decodeEvent([]byte(`{"type":`))
	assert.Error(t, err)
}

func BenchmarkDecodeEvent(b *testing.B) {
	msg := []byte(`{"type":"Dial","dialstatus":"ANSWER","caller":` + wireChannelJSON + `,"peer":` + wireChannelJSON + `,"application":"crmlink"}`)
	b.Run("crmlink", func(b *testing.B) {
		for b.Loop() {
			_, _ = decodeEvent(msg)
		}
	})
	b.Run("ari library", func(b *testing.B) {
		for b.Loop() {
			_, _ = ari.DecodeEvent(msg)
		}
	})
}
