package crm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePhone(t *testing.T) {
	cases := []struct {
		raw, region string
		want        Phone
		national    string
	}{
		{"+7 (495) 123-45-67", "RU", "+74951234567", "4951234567"},
		{"8 495 123 45 67", "RU", "+74951234567", "4951234567"},
		{"74951234567", "RU", "+74951234567", "4951234567"},
		{"4951234567", "RU", "+74951234567", "4951234567"},
		{"89161234567", "RU", "+79161234567", "9161234567"},
		{"+49 30 1234567", "RU", "+49301234567", "301234567"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			got, err := ParsePhone(c.raw, c.region)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.national, got.National())
		})
	}
}

func TestParsePhoneRejects(t *testing.T) {
	for _, raw := range []string{"", "  ", "abc", "12"} {
		_, err := ParsePhone(raw, "RU")
		assert.Error(t, err, raw)
	}
}

func TestSameNumber(t *testing.T) {
	p := Phone("+74951234567")
	assert.True(t, p.SameNumber("8 (495) 123-45-67", "RU"))
	assert.False(t, p.SameNumber("8 (495) 123-45-68", "RU"))
	assert.False(t, p.SameNumber("+1 495 123 4567", "RU"))
}

func TestPhoneMemo(t *testing.T) {
	m := NewPhoneMemo("RU")
	for range 2 { // the second round is served from the memo
		p, err := m.Parse("8 (495) 123-45-67")
		require.NoError(t, err)
		assert.Equal(t, Phone("+74951234567"), p)
	}
	_, err := m.Parse("abc")
	assert.Error(t, err)
	assert.True(t, m.Same("+74951234567", "+7 495 123 45 67"))
	assert.False(t, m.Same("+74951234567", "+7 495 123 45 68"))
}
