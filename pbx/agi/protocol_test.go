package agi

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

func TestReadEnv(t *testing.T) {
	env, err := readEnv(newLineReader(strings.NewReader(asteriskEnv("route", nil) + "SET VARIABLE")))
	require.NoError(t, err)
	assert.Equal(t, "route", env["agi_network_script"])
	assert.Equal(t, "", env["agi_accountcode"])
	assert.Equal(t, "1700000000.0", env["agi_arg_1"])

	env, err = readEnv(newLineReader(strings.NewReader("agi_network: yes\r\nagi_request: agi://h/route\r\n\r\n")))
	require.NoError(t, err, "CRLF line ends are accepted")
	assert.Equal(t, "route", scriptName(env), "script from agi_request when agi_network_script is missing")
}

func TestReadEnvRejects(t *testing.T) {
	for name, input := range map[string]string{
		"no colon":        "agi_network yes\n\n",
		"not agi_":        "Host: x\n\n",
		"upper-case key":  "AGI_NETWORK: yes\n\n",
		"empty":           "\n",
		"eof mid-block":   "agi_network: yes\n",
		"eof mid-line":    "agi_network: y",
		"line too long":   "agi_x: " + strings.Repeat("a", maxLineLength) + "\n\n",
		"too many lines":  strings.Repeat("agi_x: 1\n", maxEnvLines+1) + "\n",
		"bare agi_ key":   "agi_: 1\n\n",
		"nothing at all":  "",
		"space in key":    "agi_a b: 1\n\n",
		"binary in key":   "agi_\x00: 1\n\n",
		"http first line": "GET / HTTP/1.1\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readEnv(newLineReader(strings.NewReader(input)))
			assert.Error(t, err)
		})
	}
}

func TestReadReply(t *testing.T) {
	errAny := errors.New("any error")
	tests := []struct {
		name    string
		input   string
		wantErr error
		rest    string
	}{
		{"ok", "200 result=1\nnext\n", nil, "next"},
		{"trying first", "100 result=0 Trying...\n200 result=1\nnext\n", nil, "next"},
		{"hangup", "HANGUP\n200 result=1\n", errHangup, "200 result=1"},
		{"dead channel", "511 Command Not Permitted on a dead channel or intercept routine\nnext\n", errCommandFailed, "next"},
		{"usage, multi-line", "520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE\n520 End of proper usage.\nnext\n", errCommandFailed, "next"},
		{"garbage", "hello\n", errAny, ""},
		{"eof", "", io.EOF, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tt.input))
			err := readReply(lr)
			switch tt.wantErr {
			case errAny:
				assert.Error(t, err)
			case nil:
				assert.NoError(t, err)
			default:
				assert.ErrorIs(t, err, tt.wantErr)
			}
			if tt.rest != "" {
				line, err := lr.readLine()
				require.NoError(t, err)
				assert.Equal(t, tt.rest, line, "exactly one reply consumed")
			}
		})
	}
}

// FuzzReadEnv runs its seed corpus in every `go test`; `go test -fuzz=FuzzReadEnv` explores.
func FuzzReadEnv(f *testing.F) {
	f.Add([]byte(asteriskEnv("route", nil)))
	f.Add([]byte("agi_network: yes\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("agi_a:\n\n"))
	f.Add([]byte("agi_a: b: c\nagi_a: d\n\n"))
	f.Add([]byte("\x00\n\n"))
	f.Add([]byte(strings.Repeat("agi_x: 1\n", 300)))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := readEnv(newLineReader(strings.NewReader(string(data))))
		if err != nil {
			return
		}
		require.NotEmpty(t, env)
		require.LessOrEqual(t, len(env), maxEnvLines)
		for k, v := range env {
			require.True(t, validEnvKey(k), "key %q", k)
			require.NotContains(t, v, "\n")
			require.LessOrEqual(t, len(v), maxLineLength)
		}
		require.NotContains(t, scriptName(env), "?")
	})
}

// FuzzAnswerFor: whatever the decider returns, every value sent is safe on the AGI line.
func FuzzAnswerFor(f *testing.F) {
	f.Add("ROUTED", "", "index", "PJSIP/101", "PJSIP/102", int64(42))
	f.Add("FALLBACK", "timeout", "", "", "", int64(0))
	f.Add("ROUTED", "x\"y", "a b", "PJSIP/1\r\nEXEC", "PJSIP/1,tT", int64(-5))
	f.Fuzz(func(t *testing.T, result, reason, source, t1, t2 string, owner int64) {
		d := routing.Decision{
			Result: routing.Result(result), Reason: routing.Reason(reason), Source: routing.Source(source),
			Targets: []routing.Target{{Endpoint: t1}, {Endpoint: t2}},
		}
		d.Owner = crm.UserID(owner)
		a := dialplan.ForDial(d, DefaultRingTimeout)
		require.Contains(t, []string{"ROUTED", "FALLBACK"}, a.Result)
		if a.Result == "ROUTED" {
			require.NotEmpty(t, a.Dial)
		}
		for _, v := range a.AGIVars() {
			require.False(t, strings.ContainsAny(v.Value, "\"\\ \r\n\t,;()$"), "%s=%q", v.Name, v.Value)
			cmd := setVariableCommand(v.Name, v.Value)
			require.Equal(t, 1, strings.Count(cmd, "\n"))
		}
	})
}
