package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm"
)

// callPBX accepts every attempt: the fuzzed bodies reach the real checks of
// clicktocall.Service.
type callPBX struct{}

func (callPBX) Place(context.Context, clicktocall.Attempt) error { return nil }

// FuzzPlaceCall: whatever a browser or a script sends to POST /v1/calls, crmlink answers
// 202 or a 4xx with a reason, and never panics.
func FuzzPlaceCall(f *testing.F) {
	for _, seed := range []string{
		`{"manager": 1001, "phone": "+7 (495) 100-00-01"}`,
		`{"manager": "1001", "phone": "84951000001"}`,
		`{"manager": -1, "phone": "1"}`,
		`{"manager": 1e99, "phone": "+"}`,
		`{"manager": 1001, "phone": "` + strings.Repeat("9", 100) + `"}`,
		`{"manager": 1001, "phone": "+7 495", "extra": 1}`,
		`[]`, `{`, ``, `null`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		svc := clicktocall.New(clicktocall.Options{Region: "RU", PBX: callPBX{}, Manager: func(u crm.UserID) (clicktocall.Manager, bool) {
			return clicktocall.Manager{User: u, Endpoints: []string{"PJSIP/101"}}, u == 1001
		}})
		h := PlaceCall(svc, zerolog.Nop())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/calls", strings.NewReader(body)))
		if rec.Code != http.StatusAccepted {
			assert.Contains(t, []int{400, 404, 409, 422}, rec.Code, body)
			assert.Contains(t, rec.Body.String(), `"error"`)
		}
	})
}
