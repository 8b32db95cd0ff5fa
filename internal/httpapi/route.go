package httpapi

import (
	"net/http"
	"strings"

	"github.com/crmlink/crmlink/routing"
)

// RouteHandler answers GET /v1/route?number=...[&called=...] with the decision as JSON:
// the same decision the PBX front ends get, for explaining a routing. It is an inquiry,
// not a call: a number not cached costs a paced amoCRM lookup that never takes the
// requests kept for calls.
func RouteHandler(d routing.Decider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		number := strings.TrimSpace(r.URL.Query().Get("number"))
		if number == "" {
			WriteError(w, http.StatusBadRequest, "query parameter number is required, e.g. /v1/route?number=%2B74951234567")
			return
		}
		if len(number) > 64 {
			WriteError(w, http.StatusBadRequest, "number is longer than 64 characters")
			return
		}
		dec := d.Decide(r.Context(), routing.Call{Caller: number, Called: r.URL.Query().Get("called"), Inquiry: true})
		WriteJSON(w, http.StatusOK, dec)
	})
}
