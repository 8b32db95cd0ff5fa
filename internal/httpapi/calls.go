package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm"
)

// CallPlacer is click-to-call: place a call for a manager, tell a call's state.
type CallPlacer interface {
	Place(ctx context.Context, manager crm.UserID, phone string) (clicktocall.Call, error)
	Call(id string) (clicktocall.Call, bool)
}

// PlaceCall handles POST /v1/calls {"manager": <amoCRM user id>, "phone": "<number>"}:
// 202 with the call (its id and state) once the manager's phones ring, or ended
// manager_unreachable when none of them could ring; 400 for a body
// or number that is no use, 404 for a manager crmlink does not know, 422 for a manager
// without phones, 409 while the manager has a call in progress, 503 without Asterisk.
// A click-to-call key places calls for its own manager only (403 otherwise).
func PlaceCall(p CallPlacer, log zerolog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Manager json.RawMessage `json:"manager"`
			Phone   string          `json:"phone"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			log.Info().Err(err).Str("remote", r.RemoteAddr).Msg("click-to-call: refused a body that is not the JSON asked for")
			WriteError(w, http.StatusBadRequest, `body must be JSON {"manager": <amoCRM user id>, "phone": "<client number>"}`)
			return
		}
		manager, ok := userID(body.Manager)
		if !ok {
			WriteError(w, http.StatusBadRequest, "manager must be the amoCRM user id, a positive number")
			return
		}
		if own, byKey := KeyManager(r); byKey && own != int64(manager) {
			WriteError(w, http.StatusForbidden, "this click-to-call key is manager "+strconv.FormatInt(own, 10)+"'s; it places calls for that manager only")
			return
		}
		c, err := p.Place(r.Context(), manager, body.Phone)
		if err != nil {
			code := http.StatusServiceUnavailable
			switch {
			case errors.Is(err, clicktocall.ErrBadRequest):
				code = http.StatusBadRequest
			case errors.Is(err, clicktocall.ErrUnknownManager):
				code = http.StatusNotFound
			case errors.Is(err, clicktocall.ErrNoPhones):
				code = http.StatusUnprocessableEntity
			case errors.Is(err, clicktocall.ErrInProgress):
				code = http.StatusConflict
			}
			log.Info().Err(err).Int64("manager", int64(manager)).Int("status", code).Msg("click-to-call refused")
			WriteError(w, code, err.Error())
			return
		}
		log.Info().Str("call", c.ID).Int64("manager", int64(manager)).Msg("click-to-call: ringing the manager")
		w.Header().Set("Location", "/v1/calls/"+c.ID)
		WriteJSON(w, http.StatusAccepted, c)
	})
}

// userID reads an amoCRM user id sent as a number or a numeric string (a widget reads it
// from amoCRM's page as either).
func userID(raw json.RawMessage) (crm.UserID, bool) {
	s := string(bytes.Trim(bytes.TrimSpace(raw), `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	return crm.UserID(n), err == nil && n > 0
}

// CallState handles GET /v1/calls/{id}: the call's state (ringing_manager,
// ringing_client, talking, ended with a cause). A click-to-call key sees its manager's
// calls only; another's is 404, as if it did not exist.
func CallState(p CallPlacer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, found := p.Call(r.PathValue("id"))
		if own, byKey := KeyManager(r); found && byKey && own != int64(c.Manager) {
			found = false
		}
		if !found {
			WriteError(w, http.StatusNotFound, "no such call (calls are kept an hour after they end)")
			return
		}
		WriteJSON(w, http.StatusOK, c)
	})
}

// CORS lets pages of the allowed origins (the amoCRM account the widget runs in) call h
// from a browser, and answers their preflight (register it for OPTIONS): a preflight
// carries no credentials by the Fetch standard and learns only what is allowed.
func CORS(origins []string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(origins, strings.TrimSuffix(origin, "/")) {
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				hd.Set("Access-Control-Allow-Methods", "GET, POST")
				hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				hd.Set("Access-Control-Max-Age", "600")
				// A page on the internet (amoCRM) calling crmlink on the office network:
				// Chromium's Private Network Access asks first.
				if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
					hd.Set("Access-Control-Allow-Private-Network", "true")
				}
			}
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
