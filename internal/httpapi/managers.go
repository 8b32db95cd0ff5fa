package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
)

// AvailabilitySetter is the router's manual manager status.
type AvailabilitySetter interface {
	SetManagerAvailability(user crm.UserID, state routing.Availability) error
	ManagerAvailability(user crm.UserID) routing.Availability
}

// ManagerAvailability handles PUT /v1/managers/{id}/availability {"state":"unavailable"}
// (available, unavailable, auto) and GET on the same path.
func ManagerAvailability(r AvailabilitySetter) (get, put http.Handler) {
	parse := func(w http.ResponseWriter, req *http.Request) (crm.UserID, bool) {
		id, err := strconv.ParseInt(req.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			WriteError(w, http.StatusBadRequest, "manager id must be the CRM user id, a positive number")
			return 0, false
		}
		return crm.UserID(id), true
	}
	get = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if id, ok := parse(w, req); ok {
			WriteJSON(w, http.StatusOK, map[string]string{"state": r.ManagerAvailability(id).String()})
		}
	})
	put = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, ok := parse(w, req)
		if !ok {
			return
		}
		var body struct {
			State string `json:"state"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 4096)).Decode(&body); err != nil {
			WriteError(w, http.StatusBadRequest, `body must be JSON {"state": "available|unavailable|auto"}`)
			return
		}
		state, err := routing.ParseAvailability(body.State)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := r.SetManagerAvailability(id, state); err != nil {
			WriteError(w, http.StatusNotFound, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"state": state.String()})
	})
	return get, put
}
