package amocrm

import (
	"testing"

	"github.com/crmlink/crmlink/internal/testrig"
)

// The shared budget's tests use a real Redis (testrig).
func TestMain(m *testing.M) { testrig.Main(m) }
