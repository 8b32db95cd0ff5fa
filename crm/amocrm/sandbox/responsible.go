package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Errors of the Go API; the control API answers them 400 and 404.
var (
	ErrBadRequest = errors.New("sandbox: bad request")
	ErrNotFound   = errors.New("sandbox: no such entity")
)

// ResponsibleUpdate is a manager giving an entity to another user in the amoCRM interface.
type ResponsibleUpdate struct {
	// Entity is "contact", "company" or "lead".
	Entity            string `json:"entity"`
	ID                int64  `json:"id"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	// ModifiedUserID is who made the change, sent as modified_user_id in the webhook.
	ModifiedUserID int64 `json:"modified_user_id"`
}

// ResponsibleResult reports a change and the delivery of its webhook.
type ResponsibleResult struct {
	Entity               string `json:"entity"`
	ID                   int64  `json:"id"`
	OldResponsibleUserID int64  `json:"old_responsible_user_id"`
	ResponsibleUserID    int64  `json:"responsible_user_id"`
	// Webhook is nil when no webhook URL is set.
	Webhook *WebhookDelivery `json:"webhook"`
}

// WebhookDelivery is how the webhook receiver answered: its HTTP status, or why none came.
type WebhookDelivery struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// SetResponsible changes the entity's responsible user and posts the webhook amoCRM would
// send for it, returning once the receiver has answered (or the webhook timeout passed).
// Contacts and companies are reported as contacts[update][0][...] with their type, leads as
// leads[responsible][0][...].
func (s *Server) SetResponsible(ctx context.Context, u ResponsibleUpdate) (ResponsibleResult, error) {
	if u.ResponsibleUserID <= 0 {
		return ResponsibleResult{}, fmt.Errorf("%w: responsible_user_id must be positive", ErrBadRequest)
	}
	s.mu.Lock()
	form, old, err := s.applyResponsible(u)
	target := s.settings.WebhookURL
	s.mu.Unlock()
	if err != nil {
		return ResponsibleResult{}, err
	}
	res := ResponsibleResult{Entity: u.Entity, ID: u.ID, OldResponsibleUserID: old, ResponsibleUserID: u.ResponsibleUserID}
	s.log.Info().Str("entity", u.Entity).Int64("id", u.ID).Int64("old", old).Int64("new", u.ResponsibleUserID).Msg("sandbox responsible changed")
	if target != "" {
		d := s.postWebhook(ctx, target, form)
		res.Webhook = &d
	}
	return res, nil
}

// applyResponsible changes the store and builds the webhook form; s.mu is held.
func (s *Server) applyResponsible(u ResponsibleUpdate) (url.Values, int64, error) {
	now := s.now().Unix()
	var prefix, name string
	fields := map[string]int64{}
	var old int64
	switch u.Entity {
	case "lead":
		l := s.st.leads[u.ID]
		if l == nil {
			return nil, 0, fmt.Errorf("%w: lead %d", ErrNotFound, u.ID)
		}
		old, l.ResponsibleUserID, l.UpdatedAt = l.ResponsibleUserID, u.ResponsibleUserID, now
		prefix, name = "leads[responsible][0]", l.Name
		fields["status_id"], fields["pipeline_id"], fields["price"] = l.StatusID, l.PipelineID, 0
		fields["date_create"], fields["created_at"] = l.CreatedAt, l.CreatedAt
	case "contact":
		c := s.st.contacts[u.ID]
		if c == nil {
			return nil, 0, fmt.Errorf("%w: contact %d", ErrNotFound, u.ID)
		}
		old, c.ResponsibleUserID, c.UpdatedAt = c.ResponsibleUserID, u.ResponsibleUserID, now
		prefix, name = "contacts[update][0]", c.Name
		fields["date_create"], fields["created_at"] = c.CreatedAt, c.CreatedAt
	case "company":
		c := s.st.companies[u.ID]
		if c == nil {
			return nil, 0, fmt.Errorf("%w: company %d", ErrNotFound, u.ID)
		}
		old, c.ResponsibleUserID, c.UpdatedAt = c.ResponsibleUserID, u.ResponsibleUserID, now
		prefix, name = "contacts[update][0]", c.Name
		fields["date_create"], fields["created_at"] = c.CreatedAt, c.CreatedAt
	default:
		return nil, 0, fmt.Errorf("%w: entity %q: want contact, company or lead", ErrBadRequest, u.Entity)
	}
	fields["id"] = u.ID
	fields["responsible_user_id"] = u.ResponsibleUserID
	fields["old_responsible_user_id"] = old
	fields["modified_user_id"] = u.ModifiedUserID
	fields["last_modified"], fields["updated_at"] = now, now
	fields["account_id"] = s.settings.Account.ID
	form := url.Values{}
	for k, v := range fields {
		form.Set(prefix+"["+k+"]", strconv.FormatInt(v, 10))
	}
	form.Set(prefix+"[name]", name)
	if strings.HasPrefix(prefix, "contacts") {
		form.Set(prefix+"[type]", u.Entity)
	}
	form.Set("account[subdomain]", s.settings.Account.Subdomain)
	form.Set("account[id]", strconv.FormatInt(s.settings.Account.ID, 10))
	return form, old, nil
}

// postWebhook delivers a form-encoded webhook as amoCRM does and reports the answer.
func (s *Server) postWebhook(ctx context.Context, target string, form url.Values) WebhookDelivery {
	d := WebhookDelivery{URL: target}
	ctx, cancel := context.WithTimeout(ctx, s.webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.webhookClient.Do(req)
	if err != nil {
		d.Error = err.Error()
		s.log.Warn().Err(err).Str("url", target).Msg("sandbox webhook not delivered")
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d.Status = resp.StatusCode
	s.log.Debug().Str("url", target).Int("status", d.Status).Msg("sandbox webhook delivered")
	return d
}

// SetWebhookURL changes where webhooks go; "" stops them.
func (s *Server) SetWebhookURL(u string) error {
	if u != "" {
		if err := checkWebhookURL(u); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	s.mu.Lock()
	s.settings.WebhookURL = u
	s.mu.Unlock()
	return nil
}
