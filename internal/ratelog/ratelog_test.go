package ratelog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLimiterLetsOneEventPerIntervalThrough(t *testing.T) {
	l := New(10 * time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	ok, n := l.Allow()
	assert.True(t, ok)
	assert.Zero(t, n)
	for range 1000 {
		ok, _ = l.Allow()
		assert.False(t, ok)
	}
	now = now.Add(10 * time.Second)
	ok, n = l.Allow()
	assert.True(t, ok)
	assert.Equal(t, 1000, n, "the next line says how many were left out")
	ok, n = l.Allow()
	assert.False(t, ok)
	assert.Zero(t, n)
}
