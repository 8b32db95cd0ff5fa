package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

const unsortedFormsPath = unsortedPath + "/forms"

type formsMetadataOut struct {
	FormID     string `json:"form_id"`
	FormName   string `json:"form_name"`
	FormPage   string `json:"form_page"`
	IP         string `json:"ip,omitempty"`
	FormSentAt int64  `json:"form_sent_at"`
	Referer    string `json:"referer,omitempty"`
	VisitorUID string `json:"visitor_uid,omitempty"`
}

type formLeadOut struct {
	Name     string `json:"name,omitempty"`
	Embedded *struct {
		Tags []tagOut `json:"tags,omitempty"`
	} `json:"_embedded,omitempty"`
}

type unsortedFormOut struct {
	SourceName string           `json:"source_name"`
	SourceUID  string           `json:"source_uid"`
	PipelineID int64            `json:"pipeline_id,omitempty"`
	CreatedAt  int64            `json:"created_at"`
	RequestID  string           `json:"request_id"`
	Metadata   formsMetadataOut `json:"metadata"`
	Embedded   struct {
		Leads    []formLeadOut        `json:"leads"`
		Contacts []unsortedContactOut `json:"contacts"`
	} `json:"_embedded"`
}

// unsortedEntryIn is an entry in an answer about Unsorted: a creation, an accept, a list.
type unsortedEntryIn struct {
	UID       string `json:"uid"`
	SourceUID string `json:"source_uid"`
	Embedded  struct {
		Leads    []idRef `json:"leads"`
		Contacts []idRef `json:"contacts"`
	} `json:"_embedded"`
}

func (u unsortedEntryIn) entry() crm.UnsortedEntry {
	e := crm.UnsortedEntry{UID: u.UID}
	if len(u.Embedded.Leads) > 0 {
		e.LeadID = u.Embedded.Leads[0].ID
	}
	if len(u.Embedded.Contacts) > 0 {
		e.ContactID = u.Embedded.Contacts[0].ID
	}
	return e
}

// AddUnsortedForm creates an Unsorted entry of category forms with the form's contact and
// lead, for a manager to accept in amoCRM (or for AcceptUnsorted). UID is the entry's
// source_uid: amoCRM refuses an item already waiting in Unsorted, and then the waiting
// entry is returned, so a retry creates nothing twice while the entry waits.
func (c *Client) AddUnsortedForm(ctx context.Context, f crm.UnsortedForm) (crm.UnsortedEntry, error) {
	if strings.TrimSpace(f.UID) == "" {
		return crm.UnsortedEntry{}, apiError(http.MethodPost, unsortedFormsPath, errors.New("no UID"))
	}
	at := f.SentAt
	if at.IsZero() {
		at = time.Now()
	}
	source := or(f.SourceName, defaultUnsortedSource)
	formName := or(f.FormName, source)
	// amoCRM requires the page; a request from no page names its form instead.
	page := or(f.FormPage, formName)
	o := unsortedFormOut{
		SourceName: source, SourceUID: f.UID, PipelineID: f.PipelineID, CreatedAt: at.Unix(), RequestID: f.UID,
		Metadata: formsMetadataOut{
			FormID: or(f.FormID, source), FormName: formName, FormPage: page, IP: f.IP, FormSentAt: at.Unix(),
			Referer: f.Referer, VisitorUID: f.VisitorUID,
		},
	}
	l := formLeadOut{Name: f.LeadName}
	if len(f.Tags) > 0 {
		l.Embedded = &struct {
			Tags []tagOut `json:"tags,omitempty"`
		}{}
		for _, t := range f.Tags {
			l.Embedded.Tags = append(l.Embedded.Tags, tagOut{Name: t})
		}
	}
	o.Embedded.Leads = []formLeadOut{l}
	o.Embedded.Contacts = []unsortedContactOut{{
		Name: f.Contact.Name, ResponsibleUserID: int64(f.Contact.Responsible),
		CustomFieldsValues: append(contactFields(f.Contact.Phones, f.Contact.Emails), accountFields(f.Contact.Fields)...),
	}}
	// In the forms lane, with other chats' entries: up to 50 a request.
	raw, err := encodeItems(http.MethodPost, unsortedFormsPath, []unsortedFormOut{o})
	if err != nil {
		return crm.UnsortedEntry{}, err
	}
	answers, err := c.batches.postAnswers(ctx, unsortedFormsPath, "unsorted", raw, []string{f.UID})
	var ve *ValidationError
	if errors.As(err, &ve) && len(duplicateEntries(ve, []unsortedOut{{RequestID: f.UID}})) == 1 {
		return c.waitingForm(ctx, f.UID, err)
	}
	if err != nil {
		return crm.UnsortedEntry{}, err
	}
	var got unsortedEntryIn
	switch {
	case len(answers) != 1:
		return crm.UnsortedEntry{}, apiError(http.MethodPost, unsortedFormsPath, fmt.Errorf("sent 1 entry, the answer lists %d", len(answers)))
	case json.Unmarshal(answers[0], &got) != nil:
		return crm.UnsortedEntry{}, apiError(http.MethodPost, unsortedFormsPath, fmt.Errorf("decode response: %s is not an Unsorted entry", answers[0]))
	case got.UID == "":
		return crm.UnsortedEntry{}, apiError(http.MethodPost, unsortedFormsPath, errors.New("sent 1 entry, the answer lists one without a uid"))
	}
	return got.entry(), nil
}

// waitingForm finds the waiting forms entry with this source uid after amoCRM refused a
// second one; refused is that refusal, returned when no such entry waits after all.
func (c *Client) waitingForm(ctx context.Context, sourceUID string, refused error) (crm.UnsortedEntry, error) {
	q := url.Values{"filter[category][]": {"forms"}, "limit": {"250"}}
	found, err := listAll[unsortedEntryIn](ctx, c, unsortedPath, q, "unsorted")
	if err != nil {
		return crm.UnsortedEntry{}, err
	}
	for _, u := range found {
		if u.SourceUID == sourceUID {
			return u.entry(), nil
		}
	}
	return crm.UnsortedEntry{}, refused
}

// UnsortedWaiting reports whether the entry with amoCRM's uid still waits in Unsorted.
func (c *Client) UnsortedWaiting(ctx context.Context, uid string) (bool, error) {
	if uid == "" {
		return false, apiError(http.MethodGet, unsortedPath, errors.New("no uid"))
	}
	q := url.Values{"filter[uid]": {uid}, "limit": {"250"}}
	found, err := listAll[unsortedEntryIn](ctx, c, unsortedPath, q, "unsorted")
	if err != nil {
		return false, err
	}
	for _, u := range found {
		if u.UID == uid {
			return true, nil
		}
	}
	return false, nil
}

type acceptOut struct {
	UserID   int64 `json:"user_id,omitempty"`
	StatusID int64 `json:"status_id,omitempty"`
}

// AcceptUnsorted accepts a waiting entry as user (0: the token's user), the lead going to
// statusID (0: the pipeline's first stage): its contact and lead join the account with
// user as their responsible. accepted is false, without an error, when the entry no longer
// waits: a manager accepted or declined it in amoCRM first, and that decision stands.
func (c *Client) AcceptUnsorted(ctx context.Context, uid string, user crm.UserID, statusID int64) (entry crm.UnsortedEntry, accepted bool, err error) {
	path := unsortedPath + "/" + url.PathEscape(uid) + "/accept"
	if uid == "" {
		return crm.UnsortedEntry{}, false, apiError(http.MethodPost, unsortedPath+"/{uid}/accept", errors.New("no uid"))
	}
	r, err := c.write(ctx, http.MethodPost, path, acceptOut{UserID: int64(user), StatusID: statusID})
	var ve *ValidationError
	if errors.As(err, &ve) || errors.Is(err, crm.ErrNotFound) {
		waiting, werr := c.UnsortedWaiting(ctx, uid)
		if werr == nil && !waiting {
			return crm.UnsortedEntry{UID: uid}, false, nil
		}
		return crm.UnsortedEntry{}, false, err
	}
	if err != nil {
		return crm.UnsortedEntry{}, false, err
	}
	var got unsortedEntryIn
	if err := json.Unmarshal(r.body, &got); err != nil {
		return crm.UnsortedEntry{}, false, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
	}
	e := got.entry()
	if e.UID == "" {
		e.UID = uid
	}
	return e, true, nil
}

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
