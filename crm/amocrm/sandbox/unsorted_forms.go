package sandbox

import (
	"net/http"
	"strings"
)

// FormsMetadata is the site request an Unsorted entry of category forms is about, as
// amoCRM's API takes it: the form (its id in the sender's system and the name amoCRM
// shows), the page it was sent from, when, and the visitor.
type FormsMetadata struct {
	FormID     string `json:"form_id"`
	FormName   string `json:"form_name"`
	FormPage   string `json:"form_page"`
	IP         string `json:"ip,omitempty"`
	FormSentAt int64  `json:"form_sent_at"`
	Referer    string `json:"referer,omitempty"`
	VisitorUID string `json:"visitor_uid,omitempty"`
}

func (m *FormsMetadata) render() map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return map[string]any{
		"form_id": numberOrString(m.FormID), "form_name": m.FormName, "form_page": m.FormPage, "ip": m.IP,
		"form_sent_at": m.FormSentAt, "referer": m.Referer, "visitor_uid": m.VisitorUID,
	}
}

type unsortedFormIn struct {
	unsortedCommon
	Metadata *struct {
		FormID     looseString `json:"form_id"`
		FormName   string      `json:"form_name"`
		FormPage   string      `json:"form_page"`
		IP         string      `json:"ip"`
		FormSentAt int64       `json:"form_sent_at"`
		Referer    string      `json:"referer"`
		VisitorUID string      `json:"visitor_uid"`
	} `json:"metadata"`
}

// postUnsortedForms serves POST /api/v4/leads/unsorted/forms: like sip entries, with the
// form's metadata (form_id, form_name, form_page and form_sent_at required).
func (s *Server) postUnsortedForms(w http.ResponseWriter, r *http.Request) {
	postUnsorted(s, w, r, func(reqID string, in unsortedFormIn, batch map[string]bool, v *invalid) Unsorted {
		return s.unsortedBase(reqID, categoryForms, in.unsortedCommon, batch, v, func(u *Unsorted) {
			formsMetadataFrom(reqID, in, u, v)
		})
	})
}

// formsMetadataFrom checks and keeps a forms entry's metadata.
func formsMetadataFrom(reqID string, in unsortedFormIn, u *Unsorted, v *invalid) {
	m := in.Metadata
	if m == nil {
		v.add(reqID, codeNotBlank, "metadata", detailNotBlank)
		return
	}
	u.Form = &FormsMetadata{
		FormID: strings.TrimSpace(string(m.FormID)), FormName: strings.TrimSpace(m.FormName), FormPage: strings.TrimSpace(m.FormPage),
		IP: m.IP, FormSentAt: m.FormSentAt, Referer: m.Referer, VisitorUID: m.VisitorUID,
	}
	for _, f := range []struct {
		path  string
		empty bool
	}{
		{"metadata.form_id", u.Form.FormID == ""}, {"metadata.form_name", u.Form.FormName == ""},
		{"metadata.form_page", u.Form.FormPage == ""}, {"metadata.form_sent_at", m.FormSentAt <= 0},
	} {
		if f.empty {
			v.add(reqID, codeNotBlank, f.path, detailNotBlank)
		}
	}
}
