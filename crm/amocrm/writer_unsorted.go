package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/crm"
)

const (
	unsortedPath    = "/api/v4/leads/unsorted"
	unsortedSipPath = unsortedPath + "/sip"
	// unsortedServiceCode is metadata.service_code of the entries crmlink creates: the code
	// of the telephony service the call came through.
	unsortedServiceCode = "crmlink"
	// defaultUnsortedSource is the source_name of an entry that names none.
	defaultUnsortedSource = "crmlink"
)

type unsortedContactOut struct {
	Name               string     `json:"name,omitempty"`
	ResponsibleUserID  int64      `json:"responsible_user_id,omitempty"`
	CustomFieldsValues []fieldOut `json:"custom_fields_values,omitempty"`
}

type unsortedLeadOut struct {
	Name              string `json:"name,omitempty"`
	ResponsibleUserID int64  `json:"responsible_user_id,omitempty"`
}

type sipMetadataOut struct {
	Phone             string `json:"phone"`
	CalledAt          int64  `json:"called_at"`
	Duration          int64  `json:"duration"`
	Link              string `json:"link,omitempty"`
	ServiceCode       string `json:"service_code"`
	Uniq              string `json:"uniq"`
	IsCallEventNeeded bool   `json:"is_call_event_needed"`
	CallResponsible   int64  `json:"call_responsible,omitempty"`
}

type unsortedOut struct {
	SourceName string         `json:"source_name"`
	SourceUID  string         `json:"source_uid"`
	PipelineID int64          `json:"pipeline_id,omitempty"`
	CreatedAt  int64          `json:"created_at"`
	RequestID  string         `json:"request_id"`
	Metadata   sipMetadataOut `json:"metadata"`
	Embedded   struct {
		Leads    []unsortedLeadOut    `json:"leads"`
		Contacts []unsortedContactOut `json:"contacts"`
	} `json:"_embedded"`
}

func unsortedOf(u crm.UnsortedCall, now time.Time) unsortedOut {
	at := u.CalledAt
	if at.IsZero() {
		at = now
	}
	source := u.SourceName
	if source == "" {
		source = defaultUnsortedSource
	}
	o := unsortedOut{
		SourceName: source, SourceUID: u.UID, PipelineID: u.PipelineID, CreatedAt: at.Unix(), RequestID: u.UID,
		Metadata: sipMetadataOut{
			Phone: string(u.Phone), CalledAt: at.Unix(), Duration: seconds(u.Duration), Link: u.Link,
			ServiceCode: unsortedServiceCode, Uniq: u.UID, IsCallEventNeeded: true,
			CallResponsible: int64(u.Responsible),
		},
	}
	o.Embedded.Leads = []unsortedLeadOut{{Name: u.LeadName, ResponsibleUserID: int64(u.Responsible)}}
	o.Embedded.Contacts = []unsortedContactOut{{
		Name: u.ContactName, ResponsibleUserID: int64(u.Responsible),
		CustomFieldsValues: contactFields([]crm.Phone{u.Phone}, nil),
	}}
	return o
}

// AddUnsortedCalls creates Unsorted entries of category sip, each with a lead and a
// contact holding the caller's phone, which a manager accepts or declines in amoCRM. UID
// is the entry's source_uid and the call's uniq. amoCRM refuses an item already in
// Unsorted; such entries (and repeats of a UID within us) are skipped, not an error, so a
// retried event creates nothing twice while its entry waits.
func (c *Client) AddUnsortedCalls(ctx context.Context, us []crm.UnsortedCall) error {
	now := time.Now()
	seen := map[string]bool{}
	var items []unsortedOut
	for i, u := range us {
		switch {
		case u.UID == "":
			return apiError(http.MethodPost, unsortedSipPath, fmt.Errorf("entry %d: no UID", i))
		case u.Phone == "":
			return apiError(http.MethodPost, unsortedSipPath, fmt.Errorf("entry %d: no phone", i))
		case seen[u.UID]:
			continue
		}
		seen[u.UID] = true
		items = append(items, unsortedOf(u, now))
	}
	for start := 0; start < len(items); start += writeBatch {
		end := min(start+writeBatch, len(items))
		if err := c.addUnsortedBatch(ctx, items[start:end]); err != nil {
			return batchError(err, start, end, len(items))
		}
	}
	return nil
}

// addUnsortedBatch posts one batch of at most writeBatch entries in the sip lane, with other
// outcomes' entries; entries amoCRM refuses only because they already wait in Unsorted are
// left out and the rest go again.
func (c *Client) addUnsortedBatch(ctx context.Context, items []unsortedOut) error {
	raw, err := encodeItems(http.MethodPost, unsortedSipPath, items)
	if err != nil {
		return err
	}
	sent := make([]string, len(items))
	for i, it := range items {
		sent[i] = it.RequestID
	}
	_, err = c.batches.postSkipping(ctx, unsortedSipPath, "unsorted", raw, sent, alreadyWaiting)
	return err
}

// alreadyWaiting reports whether amoCRM refused an entry for its source_uid alone, which for
// an entry that has one means it is already in Unsorted.
func alreadyWaiting(it ValidationItem) bool {
	if len(it.Issues) == 0 {
		return false
	}
	for _, is := range it.Issues {
		if is.Path != "source_uid" {
			return false
		}
	}
	return true
}

// duplicateEntries finds the items a validation error rejects for their source_uid alone,
// which for an entry that has one means it is already in Unsorted; nil when any item is
// rejected for anything else. Items are named by request_id (their UID) or index.
func duplicateEntries(ve *ValidationError, items []unsortedOut) map[int]bool {
	byID := make(map[string]int, len(items))
	for i, it := range items {
		byID[it.RequestID] = i
	}
	dup := map[int]bool{}
	for _, it := range ve.Items {
		i, ok := byID[it.RequestID]
		if !ok {
			n, err := strconv.Atoi(it.RequestID)
			if err != nil || n < 0 || n >= len(items) {
				return nil
			}
			i = n
		}
		if !alreadyWaiting(it) {
			return nil
		}
		dup[i] = true
	}
	return dup
}

// looseText is a value amoCRM may send as a string or a number.
type looseText string

func (t *looseText) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = looseText(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return nil // a value of another type is no phone
	}
	*t = looseText(n.String())
	return nil
}

type unsortedDTO struct {
	UID      string `json:"uid"`
	Metadata struct {
		Phone looseText `json:"phone"`
	} `json:"metadata"`
}

// PendingUnsorted returns the uid of a sip entry for the phone that waits in Unsorted:
// amoCRM takes a caller's next call into Unsorted only once the waiting entry is decided,
// and so should crmlink. It reads the waiting sip entries, every page.
func (c *Client) PendingUnsorted(ctx context.Context, phone crm.Phone) (string, error) {
	if phone.National() == "" {
		return "", apiError(http.MethodGet, unsortedPath, errors.New("empty phone number"))
	}
	q := url.Values{"filter[category][]": {"sip"}, "limit": {"250"}}
	found, err := listAll[unsortedDTO](ctx, c, unsortedPath, q, "unsorted")
	if err != nil {
		return "", err
	}
	for _, u := range found {
		if w := string(u.Metadata.Phone); w != "" && phone.SameNumber(w, c.region) {
			return u.UID, nil
		}
	}
	return "", nil
}
