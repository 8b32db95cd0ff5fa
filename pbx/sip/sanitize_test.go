package sip

import (
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

func TestContactUser(t *testing.T) {
	for endpoint, want := range map[string]string{
		"PJSIP/101":               "101",
		"PJSIP/79161234567@trunk": "79161234567",
		"SIP/+74951234567":        "+74951234567",
		"PJSIP/manager.ivanov":    "manager.ivanov",
		"Local/101@owners/n":      "101",
	} {
		got, ok := contactUser(endpoint)
		assert.True(t, ok, endpoint)
		assert.Equal(t, want, got, endpoint)
	}
	for _, bad := range []string{
		"", "101", "PJSIP/", "PJSIP/@trunk", "PJSIP/10 1", "PJSIP/101\r\nX: 1", "PJSIP/<sip:x>",
		"PJSIP/101;transport=tcp", "PJSIP/a:b", "PJSIP/" + strings.Repeat("1", maxUserLength+1), "PJSIP/1%0d%0a",
		"PJSIP/иван",
	} {
		_, ok := contactUser(bad)
		assert.False(t, ok, "%q", bad)
	}
}

func testInvite() *sipmsg.Request {
	req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "200", Host: "127.0.0.1", Port: 5070})
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060}
	via.Params.Add("branch", sipmsg.GenerateBranch())
	req.AppendHeader(via)
	from := &sipmsg.FromHeader{Address: sipmsg.Uri{Scheme: "sip", User: "79161234567", Host: "127.0.0.1"}}
	from.Params.Add("tag", "abc")
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: "200", Host: "127.0.0.1"}})
	callID := sipmsg.CallIDHeader("call-1")
	req.AppendHeader(&callID)
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 1, MethodName: sipmsg.INVITE})
	req.SetBody(nil)
	return req
}

// FuzzResponse: whatever the decider returns, the response parses back with exactly the
// headers we meant to write, and every Contact user is a plain user.
func FuzzResponse(f *testing.F) {
	f.Add("ROUTED", "", "index", "PJSIP/101", "PJSIP/102@trunk", int64(42), false)
	f.Add("FALLBACK", "not_found", "", "", "", int64(0), true)
	f.Add("ROUTED", "a\r\nX-Evil: 1", "b\nc", "PJSIP/1\r\nX-Evil: 2", "PJSIP/<sip:x@y>", int64(-1), false)
	f.Add("ROUTED", "", "", "PJSIP/1;lr", "PJSIP/1?X=1", int64(1), true)
	f.Add("", "", "", "PJSIP/\x00", "PJSIP/\xff", int64(7), false)

	contact, err := parseContactTemplate(DefaultContactTemplate)
	require.NoError(f, err)
	fallback, err := parseFallbackContact("sip:fallback@127.0.0.1:5060")
	require.NoError(f, err)
	parser := sipmsg.NewParser()

	f.Fuzz(func(t *testing.T, result, reason, source, t1, t2 string, owner int64, withFallback bool) {
		s := &RedirectServer{contact: contact}
		if withFallback {
			s.fallback = &fallback
		}
		d := routing.Decision{
			Result: routing.Result(result), Reason: routing.Reason(reason), Source: routing.Source(source),
			Owner: crm.UserID(owner), Targets: []routing.Target{{Endpoint: t1}, {Endpoint: t2}},
		}
		v := s.verdictFor(d)
		res := s.response(testInvite(), v)

		msg, err := parser.ParseSIP([]byte(res.String()))
		require.NoError(t, err, res.String())
		back := msg.(*sipmsg.Response)

		names := map[string]int{}
		for _, h := range back.Headers() {
			names[strings.ToLower(h.Name())]++
		}
		for name := range names {
			require.Contains(t, []string{"via", "from", "to", "call-id", "cseq", "contact", "content-length",
				"x-crmlink-result", "x-crmlink-reason", "x-crmlink-owner", "x-crmlink-source"}, name, res.String())
		}
		for _, name := range []string{dialplan.HeaderResult, dialplan.HeaderReason, dialplan.HeaderOwner, dialplan.HeaderSource} {
			require.Equal(t, 1, names[strings.ToLower(name)], name)
		}
		require.Equal(t, v.Result, back.GetHeader(dialplan.HeaderResult).Value())
		require.Equal(t, v.Reason, back.GetHeader(dialplan.HeaderReason).Value())
		require.Contains(t, []string{"ROUTED", "FALLBACK"}, v.Result)

		contacts := back.GetHeaders("Contact")
		switch {
		case v.Result == "ROUTED":
			require.Equal(t, 302, back.StatusCode)
			require.Len(t, contacts, len(v.contacts))
			require.NotEmpty(t, contacts)
		case withFallback:
			require.Equal(t, 302, back.StatusCode)
			require.Len(t, contacts, 1)
		default:
			require.Equal(t, 480, back.StatusCode)
			require.Empty(t, contacts)
		}
		for _, c := range v.contacts {
			require.True(t, validUser(c.User), c.User)
		}
	})
}
