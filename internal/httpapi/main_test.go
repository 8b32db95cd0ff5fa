package httpapi

import (
	"testing"

	"github.com/crmlink/crmlink/internal/testrig"
)

func TestMain(m *testing.M) { testrig.Main(m) }
