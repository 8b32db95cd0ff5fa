package sandbox

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	categorySip   = "sip"
	categoryForms = "forms"
	unsortedPath  = "/api/v4/leads/unsorted"
)

// unsortedRoute finds the endpoint under /api/v4/leads/unsorted; rest is what follows.
func (s *Server) unsortedRoute(rest []string) (endpoint, string) {
	switch {
	case len(rest) == 0:
		return endpoint{"GET": s.getUnsortedList}, ""
	case len(rest) == 1 && rest[0] == categorySip:
		return endpoint{"POST": s.postUnsortedSip}, ""
	case len(rest) == 1 && rest[0] == categoryForms:
		return endpoint{"POST": s.postUnsortedForms}, ""
	case len(rest) == 1 && (rest[0] == "chats" || rest[0] == "mail"):
		return nil, "the sandbox emulates Unsorted entries of categories sip and forms only"
	case len(rest) == 1 && rest[0] != "":
		uid := rest[0]
		return endpoint{"GET": func(w http.ResponseWriter, r *http.Request) { s.getUnsortedOne(w, r, uid) }}, ""
	case len(rest) == 2 && rest[1] == "accept":
		uid := rest[0]
		return endpoint{"POST": func(w http.ResponseWriter, r *http.Request) { s.decideAPI(w, r, uid, true) }}, ""
	case len(rest) == 2 && rest[1] == "decline":
		uid := rest[0]
		return endpoint{"DELETE": func(w http.ResponseWriter, r *http.Request) { s.decideAPI(w, r, uid, false) }}, ""
	}
	return nil, "no such endpoint"
}

// unsortedCommon is what a posted entry of any category has besides its metadata.
type unsortedCommon struct {
	SourceName string `json:"source_name"`
	SourceUID  string `json:"source_uid"`
	PipelineID int64  `json:"pipeline_id"`
	CreatedAt  int64  `json:"created_at"`
	Embedded   struct {
		Leads     []leadIn          `json:"leads"`
		Contacts  []contactIn       `json:"contacts"`
		Companies []json.RawMessage `json:"companies"`
	} `json:"_embedded"`
}

type unsortedIn struct {
	unsortedCommon
	Metadata *struct {
		Phone             looseString `json:"phone"`
		CalledAt          int64       `json:"called_at"`
		Duration          int64       `json:"duration"`
		Link              string      `json:"link"`
		ServiceCode       string      `json:"service_code"`
		Uniq              looseString `json:"uniq"`
		IsCallEventNeeded bool        `json:"is_call_event_needed"`
		CallResponsible   looseString `json:"call_responsible"`
		From              looseString `json:"from"`
	} `json:"metadata"`
}

// unsortedFrom checks a posted sip entry and builds it without uid, ids and times. An
// entry whose source_uid is already waiting in Unsorted (or earlier in the same request)
// is rejected: amoCRM does not take the same item into Unsorted twice. s.mu is held.
func (s *Server) unsortedFrom(reqID string, in unsortedIn, batch map[string]bool, v *invalid) Unsorted {
	return s.unsortedBase(reqID, categorySip, in.unsortedCommon, batch, v, func(u *Unsorted) {
		s.sipMetadataFrom(reqID, in, u, v)
	})
}

// sipMetadataFrom checks and keeps a sip entry's metadata.
func (s *Server) sipMetadataFrom(reqID string, in unsortedIn, u *Unsorted, v *invalid) {
	if m := in.Metadata; m == nil {
		v.add(reqID, codeNotBlank, "metadata", detailNotBlank)
	} else {
		u.Metadata = SipMetadata{
			Phone: strings.TrimSpace(string(m.Phone)), CalledAt: m.CalledAt, Duration: m.Duration, Link: m.Link,
			ServiceCode: m.ServiceCode, Uniq: string(m.Uniq), IsCallEventNeeded: m.IsCallEventNeeded,
			CallResponsible: string(m.CallResponsible), From: string(m.From),
		}
		if u.Metadata.Phone == "" {
			v.add(reqID, codeNotBlank, "metadata.phone", detailNotBlank)
		}
		if m.CalledAt <= 0 {
			v.add(reqID, codeNotBlank, "metadata.called_at", detailNotBlank)
		}
		if m.Duration < 0 {
			v.add(reqID, codeChoice, "metadata.duration", detailNegative)
		}
	}
}

// unsortedBase checks what entries of every category have (source, pipeline, the lead and
// the contact) and builds the entry without uid, ids and times; metadata checks and keeps
// the category's metadata. s.mu is held.
func (s *Server) unsortedBase(reqID, category string, in unsortedCommon, batch map[string]bool, v *invalid, metadata func(*Unsorted)) Unsorted {
	u := Unsorted{
		SourceUID: strings.TrimSpace(in.SourceUID), SourceName: strings.TrimSpace(in.SourceName),
		Category: category, PipelineID: in.PipelineID, CreatedAt: in.CreatedAt, Status: UnsortedPending, RequestID: reqID,
	}
	if u.SourceName == "" {
		v.add(reqID, codeNotBlank, "source_name", detailNotBlank)
	}
	switch {
	case u.SourceUID == "":
		v.add(reqID, codeNotBlank, "source_uid", detailNotBlank)
	case batch[u.SourceUID] || s.st.pendingSource(u.SourceUID):
		v.add(reqID, codeNotUnique, "source_uid", "An entry with this source_uid is already in Unsorted.")
	}
	batch[u.SourceUID] = true
	if in.PipelineID < 0 {
		v.add(reqID, codeChoice, "pipeline_id", detailChoice)
	}
	if u.PipelineID <= 0 {
		u.PipelineID = s.settings.Pipeline.ID
	}
	metadata(&u)
	switch len(in.Embedded.Leads) {
	case 0:
		v.add(reqID, codeNotBlank, "_embedded.leads", detailNotBlank)
	case 1:
		u.Lead = s.leadFrom(reqID, "_embedded.leads.0.", in.Embedded.Leads[0], false, v)
		u.Lead.PipelineID = u.PipelineID
	default:
		v.add(reqID, codeTooMany, "_embedded.leads", "This collection should contain 1 element or less.")
	}
	switch len(in.Embedded.Contacts) {
	case 0:
	case 1:
		c := s.contactFrom(reqID, "_embedded.contacts.0.", in.Embedded.Contacts[0], v)
		u.Contact = &c
	default:
		v.add(reqID, codeTooMany, "_embedded.contacts", "This collection should contain 1 element or less.")
	}
	if len(in.Embedded.Companies) > 0 {
		v.add(reqID, codeChoice, "_embedded.companies", "The sandbox does not emulate companies in Unsorted.")
	}
	return u
}

// pendingSource reports whether an entry with the source uid waits in Unsorted.
func (st *store) pendingSource(sourceUID string) bool {
	for _, u := range st.unsorted {
		if u.SourceUID == sourceUID && u.Status == UnsortedPending {
			return true
		}
	}
	return false
}

// newUID hands out an entry's uid: 40 hex digits like amoCRM's, the same on every run.
func (st *store) newUID(sourceUID string) string {
	st.uidSeq++
	h := sha1.Sum([]byte(strconv.FormatInt(st.uidSeq, 10) + "\x00" + sourceUID))
	return hex.EncodeToString(h[:])
}

// postUnsortedSip serves POST /api/v4/leads/unsorted/sip. The lead and contact of an entry
// get their ids at once but stay out of the account until the entry is accepted.
func (s *Server) postUnsortedSip(w http.ResponseWriter, r *http.Request) {
	postUnsorted(s, w, r, s.unsortedFrom)
}

// postUnsorted creates the entries of a write request, each decoded into an In and checked
// and built by build (s.mu held; batch holds the source uids of the request so far), or
// none when one is invalid.
func postUnsorted[In any](s *Server, w http.ResponseWriter, r *http.Request, build func(reqID string, in In, batch map[string]bool, v *invalid) Unsorted) {
	type createdEntry struct {
		UID       string           `json:"uid"`
		AccountID int64            `json:"account_id"`
		RequestID string           `json:"request_id"`
		Links     links            `json:"_links"`
		Embedded  unsortedEmbedded `json:"_embedded"`
	}
	batch := map[string]bool{}
	rn, out, ok := applyItems(s, w, r, func(reqID string, in In, v *invalid) Unsorted {
		return build(reqID, in, batch, v)
	}, func(rn renderer, u Unsorted, _ string, now int64) createdEntry {
		u.UID = s.st.newUID(u.SourceUID)
		if u.CreatedAt <= 0 {
			u.CreatedAt = now
		}
		u.Lead.ID, u.Lead.CreatedAt, u.Lead.UpdatedAt = s.st.nextID(), now, now
		if u.Lead.Name == "" {
			u.Lead.Name = newLeadName(u.Lead.ID)
		}
		if u.Contact != nil {
			u.Contact.ID, u.Contact.CreatedAt, u.Contact.UpdatedAt = s.st.nextID(), now, now
		}
		s.st.unsorted[u.UID] = &u
		s.st.created.unsorted = append(s.st.created.unsorted, u.UID)
		return createdEntry{
			UID: u.UID, AccountID: rn.accountID, RequestID: u.RequestID,
			Links: links{Self: link{Href: rn.base + unsortedPath + "/" + u.UID}}, Embedded: rn.unsortedEmbedded(&u),
		}
	})
	if !ok {
		return
	}
	writeHAL(w, map[string]any{
		"_total_items": len(out),
		"_links":       links{Self: link{Href: rn.base + r.URL.Path}},
		"_embedded":    map[string]any{"unsorted": out},
	})
}

type unsortedEmbedded struct {
	Leads     []ref `json:"leads"`
	Contacts  []ref `json:"contacts"`
	Companies []ref `json:"companies"`
}

func (rn renderer) unsortedEmbedded(u *Unsorted) unsortedEmbedded {
	e := unsortedEmbedded{Leads: *rn.refs("/api/v4/leads", []int64{u.Lead.ID}), Contacts: []ref{}, Companies: []ref{}}
	if u.Contact != nil {
		e.Contacts = *rn.refs("/api/v4/contacts", []int64{u.Contact.ID})
	}
	return e
}

type unsortedJSON struct {
	UID        string           `json:"uid"`
	SourceUID  string           `json:"source_uid"`
	SourceName string           `json:"source_name"`
	Category   string           `json:"category"`
	PipelineID int64            `json:"pipeline_id"`
	CreatedAt  int64            `json:"created_at"`
	Metadata   map[string]any   `json:"metadata"`
	AccountID  int64            `json:"account_id"`
	Links      links            `json:"_links"`
	Embedded   unsortedEmbedded `json:"_embedded"`
}

func (rn renderer) unsorted(u *Unsorted) unsortedJSON {
	m := u.Metadata
	meta := u.Form.render()
	if u.Category == categorySip {
		meta = rn.sipMetadata(m)
	}
	return unsortedJSON{
		UID: u.UID, SourceUID: u.SourceUID, SourceName: u.SourceName, Category: u.Category,
		PipelineID: u.PipelineID, CreatedAt: u.CreatedAt, Metadata: meta, AccountID: rn.accountID,
		Links: links{Self: link{Href: rn.base + unsortedPath + "/" + u.UID}}, Embedded: rn.unsortedEmbedded(u),
	}
}

func (rn renderer) sipMetadata(m SipMetadata) map[string]any {
	meta := map[string]any{
		"phone": m.Phone, "called_at": m.CalledAt, "duration": m.Duration, "link": m.Link,
		"service_code": m.ServiceCode, "uniq": m.Uniq, "is_call_event_needed": m.IsCallEventNeeded,
	}
	if m.CallResponsible != "" {
		meta["call_responsible"] = numberOrString(m.CallResponsible)
	}
	if m.From != "" {
		meta["from"] = m.From
	}
	return meta
}

// getUnsortedList serves GET /api/v4/leads/unsorted: the entries still waiting, oldest
// first, with filter[uid], filter[category] and filter[pipeline_id]; 204 when none.
func (s *Server) getUnsortedList(w http.ResponseWriter, r *http.Request) {
	q, p, ok := listQuery(w, r)
	if !ok {
		return
	}
	pipelines, ok := intFilter(q, "pipeline_id")
	if !ok {
		writeInvalid(w, "filter.pipeline_id", "pipeline_id must be integers")
		return
	}
	uids, categories := stringFilter(q, "uid"), stringFilter(q, "category")
	s.mu.Lock()
	rn := s.renderer(r)
	var all []unsortedJSON
	for _, uid := range s.st.created.unsorted {
		u := s.st.unsorted[uid]
		if u == nil || u.Status != UnsortedPending || (uids != nil && !uids[uid]) ||
			(categories != nil && !categories[u.Category]) || (pipelines != nil && !pipelines[u.PipelineID]) {
			continue
		}
		all = append(all, rn.unsorted(u))
	}
	s.mu.Unlock()
	writePage(w, r, rn, "unsorted", all, p.paging)
}

// getUnsortedOne serves GET /api/v4/leads/unsorted/{uid} for an entry still waiting.
func (s *Server) getUnsortedOne(w http.ResponseWriter, r *http.Request, uid string) {
	s.mu.Lock()
	u := s.st.unsorted[uid]
	found := u != nil && u.Status == UnsortedPending
	var one unsortedJSON
	if found {
		one = s.renderer(r).unsorted(u)
	}
	s.mu.Unlock()
	writeOne(w, found, one)
}

// UnsortedDecision is what accepting or declining an Unsorted entry did.
type UnsortedDecision struct {
	UID    string         `json:"uid"`
	Status UnsortedStatus `json:"status"`
	// LeadID and ContactID (0 without a contact) are the entities the accept created or the
	// decline deleted.
	LeadID    int64 `json:"lead_id"`
	ContactID int64 `json:"contact_id,omitempty"`
	// Webhook is nil when no webhook URL is set.
	Webhook *WebhookDelivery `json:"webhook"`
}

// decisionError is a refused decision: the entry is unknown (404) or a field is wrong.
type decisionError struct {
	notFound     bool
	path, detail string
}

func (e *decisionError) Error() string { return e.path + ": " + e.detail }

func (e *decisionError) Is(target error) bool {
	return (e.notFound && target == ErrNotFound) || (!e.notFound && target == ErrBadRequest)
}

// AcceptUnsorted accepts a waiting entry as a manager would: its contact and lead join the
// account (the lead in statusID, or the main pipeline's first stage when 0; both given to
// userID unless 0), the entry leaves Unsorted, and the unsorted[delete] webhook with
// action accept is posted; it returns once the receiver has answered.
func (s *Server) AcceptUnsorted(ctx context.Context, uid string, userID, statusID int64) (UnsortedDecision, error) {
	return s.decide(ctx, uid, true, userID, statusID)
}

// DeclineUnsorted declines a waiting entry: its contact and lead are deleted for good, the
// entry leaves Unsorted, and the unsorted[delete] webhook with action decline is posted.
func (s *Server) DeclineUnsorted(ctx context.Context, uid string, userID int64) (UnsortedDecision, error) {
	return s.decide(ctx, uid, false, userID, 0)
}

func (s *Server) decide(ctx context.Context, uid string, accept bool, userID, statusID int64) (UnsortedDecision, error) {
	s.mu.Lock()
	d, form, err := s.applyDecision(uid, accept, userID, statusID)
	target := s.settings.WebhookURL
	s.mu.Unlock()
	if err != nil {
		return UnsortedDecision{}, err
	}
	s.log.Info().Str("uid", uid).Str("status", string(d.Status)).Int64("lead", d.LeadID).Msg("sandbox unsorted decided")
	if target != "" {
		wd := s.postWebhook(context.WithoutCancel(ctx), target, form)
		d.Webhook = &wd
	}
	return d, nil
}

// applyDecision changes the store and builds the webhook form; s.mu is held.
func (s *Server) applyDecision(uid string, accept bool, userID, statusID int64) (UnsortedDecision, url.Values, error) {
	u := s.st.unsorted[uid]
	switch {
	case u == nil:
		return UnsortedDecision{}, nil, &decisionError{notFound: true, path: "uid", detail: "no Unsorted entry " + strconv.Quote(uid)}
	case u.Status != UnsortedPending:
		return UnsortedDecision{}, nil, &decisionError{path: "uid", detail: "the entry was already " + string(u.Status)}
	case userID < 0 || (userID > 0 && s.st.users[userID] == nil):
		return UnsortedDecision{}, nil, &decisionError{path: "user_id", detail: detailChoice}
	case statusID < 0:
		return UnsortedDecision{}, nil, &decisionError{path: "status_id", detail: detailChoice}
	}
	now := s.now().Unix()
	by := s.orAPIUser(userID)
	d := UnsortedDecision{UID: uid, LeadID: u.Lead.ID}
	if u.Contact != nil {
		d.ContactID = u.Contact.ID
	}
	result := "decline_result"
	if accept {
		result = "accept_result"
		d.Status = UnsortedAccepted
		l := cloneLead(u.Lead)
		l.StatusID = s.settings.Pipeline.StatusID
		if statusID > 0 {
			l.StatusID = statusID
		}
		if userID > 0 {
			l.ResponsibleUserID = userID
		}
		l.UpdatedAt = now
		if u.Contact != nil {
			c := cloneContact(*u.Contact)
			if userID > 0 {
				c.ResponsibleUserID = userID
			}
			c.UpdatedAt = now
			s.st.addContact(&c)
			l.ContactIDs = []int64{c.ID}
		}
		s.st.addLead(&l)
	} else {
		d.Status = UnsortedDeclined
	}
	u.Status, u.DecidedBy, u.DecidedAt = d.Status, by, now

	p := "unsorted[delete][0]"
	form := url.Values{}
	form.Set(p+"[action]", string(map[bool]string{true: "accept", false: "decline"}[accept]))
	form.Set(p+"[uid]", uid)
	form.Set(p+"[category]", u.Category)
	form.Set(p+"[pipeline_id]", strconv.FormatInt(u.PipelineID, 10))
	form.Set(p+"[created_at]", strconv.FormatInt(u.CreatedAt, 10))
	form.Set(p+"[modified_user_id]", strconv.FormatInt(by, 10))
	form.Set(p+"["+result+"][leads][0]", strconv.FormatInt(d.LeadID, 10))
	if d.ContactID != 0 {
		form.Set(p+"["+result+"][contacts][0]", strconv.FormatInt(d.ContactID, 10))
	}
	form.Set("account[subdomain]", s.settings.Account.Subdomain)
	form.Set("account[id]", strconv.FormatInt(s.settings.Account.ID, 10))
	return d, form, nil
}

// decideAPI serves POST /api/v4/leads/unsorted/{uid}/accept (body {user_id, status_id})
// and DELETE /api/v4/leads/unsorted/{uid}/decline (body {user_id}); the body may be empty.
func (s *Server) decideAPI(w http.ResponseWriter, r *http.Request, uid string, accept bool) {
	var body struct {
		UserID   int64 `json:"user_id"`
		StatusID int64 `json:"status_id"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxWriteBody))
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "the body must be a JSON object")
		return
	}
	if !accept {
		body.StatusID = 0
	}
	d, err := s.decide(r.Context(), uid, accept, body.UserID, body.StatusID)
	var de *decisionError
	switch {
	case errors.As(err, &de) && de.notFound:
		writeProblem(w, http.StatusNotFound, de.detail)
		return
	case errors.As(err, &de):
		writeInvalid(w, de.path, de.detail)
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, fmt.Sprint(err))
		return
	}
	s.mu.Lock()
	rn := s.renderer(r)
	s.mu.Unlock()
	e := unsortedEmbedded{Leads: *rn.refs("/api/v4/leads", []int64{d.LeadID}), Contacts: []ref{}, Companies: []ref{}}
	if d.ContactID != 0 {
		e.Contacts = *rn.refs("/api/v4/contacts", []int64{d.ContactID})
	}
	s.mu.Lock()
	u := s.st.unsorted[d.UID]
	category, pipeline, created := u.Category, u.PipelineID, u.CreatedAt
	s.mu.Unlock()
	writeHAL(w, map[string]any{
		"uid":         d.UID,
		"category":    category,
		"pipeline_id": pipeline,
		"created_at":  created,
		"account_id":  rn.accountID,
		"_links":      links{Self: link{Href: rn.base + unsortedPath + "/" + d.UID}},
		"_embedded":   e,
	})
}
