package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// ChatAccessChecker answers a user's permission on a client's chats (chatbridge.Access).
type ChatAccessChecker interface {
	Check(ctx context.Context, user crm.UserID, phone crm.Phone) (chatbridge.Permission, error)
}

// chatAccessTimeout bounds the CRM reads behind one answer.
const chatAccessTimeout = 5 * time.Second

// ChatAccess answers GET /v1/chat-access?user=<CRM user id>&phone=<client number> with
// what the user may do with that client's chats under their chat role:
// {"user":1001,"role":"manager","read":true,"write":true,"responsible":[1001],"reason":"..."}.
// A chat front end asks it before showing or sending; 400 for a bad parameter, 502 when
// the CRM cannot say who is responsible (access is then not granted).
func ChatAccess(a ChatAccessChecker, region string, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "chat-access").Logger()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		user, err := strconv.ParseInt(strings.TrimSpace(q.Get("user")), 10, 64)
		if err != nil || user <= 0 {
			WriteError(w, http.StatusBadRequest, "query parameter user must be a CRM user id (a positive number), e.g. /v1/chat-access?user=1001&phone=%2B74951234567")
			return
		}
		raw := strings.TrimSpace(q.Get("phone"))
		if len(raw) > 64 {
			WriteError(w, http.StatusBadRequest, "phone is longer than 64 characters")
			return
		}
		phone, err := crm.ParsePhone(raw, region)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "query parameter phone must be the client's number: "+err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), chatAccessTimeout)
		defer cancel()
		p, err := a.Check(ctx, crm.UserID(user), phone)
		if err != nil {
			log.Error().Err(err).Int64("user", user).Str("phone", string(phone)).Msg("chat access: CRM did not answer")
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			WriteError(w, status, "cannot tell who is responsible for this client: "+err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, p)
	})
}

// ChatReassigner gives a client to another user on both sides, under the acting user's
// chat role (chatbridge.Sync.Reassign).
type ChatReassigner interface {
	Reassign(ctx context.Context, by crm.UserID, phone crm.Phone, to crm.UserID) (chatbridge.Reassignment, error)
}

// maxReassignBody bounds POST /v1/chat/reassign's JSON body.
const maxReassignBody = 4 << 10

// ChatReassign answers POST /v1/chat/reassign {"by":1010,"phone":"+7...","responsible":1002}
// (bearer token): the acting user `by` gives the client to `responsible` in amoCRM and in
// every synced chat. 403 when by's chat role does not allow it (a manager reassigning
// someone else's client, quality control), 400 for a bad body or a responsible who cannot
// take chats, 502 when the CRM or a platform failed (the body says what was done).
func ChatReassign(r ChatReassigner, region string, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "chat-reassign").Logger()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			By          int64  `json:"by"`
			Phone       string `json:"phone"`
			Responsible int64  `json:"responsible"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxReassignBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			WriteError(w, http.StatusBadRequest, `body must be {"by": CRM user id, "phone": client number, "responsible": CRM user id}: `+err.Error())
			return
		}
		if in.By <= 0 || in.Responsible <= 0 {
			WriteError(w, http.StatusBadRequest, "by and responsible must be CRM user ids (positive numbers)")
			return
		}
		phone, err := crm.ParsePhone(in.Phone, region)
		if err != nil || len(in.Phone) > 64 {
			WriteError(w, http.StatusBadRequest, "phone must be the client's number")
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), 3*chatAccessTimeout)
		defer cancel()
		res, err := r.Reassign(ctx, crm.UserID(in.By), phone, crm.UserID(in.Responsible))
		switch {
		case err == nil:
			WriteJSON(w, http.StatusOK, res)
		case errors.Is(err, chatbridge.ErrForbidden):
			log.Warn().Int64("by", in.By).Str("phone", string(phone)).Msg("reassignment refused by the chat role")
			WriteJSON(w, http.StatusForbidden, map[string]any{"error": err.Error(), "permission": res.Permission})
		case errors.Is(err, chatbridge.ErrBadTarget):
			WriteError(w, http.StatusBadRequest, err.Error())
		default:
			log.Error().Err(err).Int64("by", in.By).Str("phone", string(phone)).Msg("reassignment failed")
			WriteJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "result": res})
		}
	})
}
