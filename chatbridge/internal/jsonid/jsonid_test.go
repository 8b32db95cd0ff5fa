package jsonid

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestID(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
		out     string
	}{
		{in: `7`, want: "7", out: `7`},
		{in: `"7"`, want: "7", out: `7`},
		{in: `"u-ann"`, want: "u-ann", out: `"u-ann"`},
		{in: `"007"`, want: "007", out: `"007"`},
		{in: `null`, want: "", out: `""`},
		{in: `12345678901234567890`, want: "12345678901234567890", out: `"12345678901234567890"`},
		{in: `1.5`, wantErr: true},
		{in: `1e3`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		var id ID
		err := json.Unmarshal([]byte(tt.in), &id)
		if tt.wantErr {
			assert.Error(t, err, tt.in)
			continue
		}
		assert.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, id, tt.in)
		b, err := json.Marshal(id)
		assert.NoError(t, err)
		assert.Equal(t, tt.out, string(b), tt.in)
	}
}
