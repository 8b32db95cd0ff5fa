package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// The write side: the Client is a crm.Writer. Writes spend the account's budget with the
// context's priority, background unless the caller marked it (the call path never writes).
// Slices go out in requests of at most writeBatch entities, the size amoCRM recommends,
// and results come back in the order of the input.

var _ crm.Writer = (*Client)(nil)

// writeBatch is the most entities one write request carries.
const writeBatch = 50

const tasksPath = "/api/v4/tasks"

// entityPaths are amoCRM's names of the entity types in paths and entity_type fields.
var entityPaths = map[crm.EntityType]string{
	crm.EntityLead:    "leads",
	crm.EntityContact: "contacts",
	crm.EntityCompany: "companies",
}

// entityPath names an entity type the way amoCRM does ("leads").
func entityPath(e crm.EntityType) (string, error) {
	if p, ok := entityPaths[e]; ok {
		return p, nil
	}
	return "", fmt.Errorf("unknown entity type %q: want lead, contact or company", e)
}

// entityOf is entityPath backwards; "" for a name it does not know.
func entityOf(path string) crm.EntityType {
	for e, p := range entityPaths {
		if p == path {
			return e
		}
	}
	return ""
}

// createdRef is an entry of a creation's answer.
type createdRef struct {
	ID        int64           `json:"id"`
	RequestID json.RawMessage `json:"request_id"`
}

// batchError says which part of a split write failed, and that the parts before it were
// written.
func batchError(err error, start, end, total int) error {
	if total <= writeBatch {
		return err
	}
	return fmt.Errorf("%w (items %d-%d of %d; the %d before were written)", err, start+1, end, total, start)
}

// create posts items to path in batches and returns the ids amoCRM gave them, in the
// order of items. sent is the request_id each item carries ("" for none). On an error the
// ids of the batches already created come back with it.
func create[T any](ctx context.Context, c *Client, path, key string, items []T, sent []string) ([]int64, error) {
	if len(items) == 0 {
		return []int64{}, nil
	}
	if len(items) <= writeBatch {
		raw, err := encodeItems(http.MethodPost, path, items)
		if err != nil {
			return nil, err
		}
		ids, err := c.batches.post(ctx, path, key, raw, sent)
		if ids == nil {
			ids = []int64{}
		}
		return ids, err
	}
	ids := make([]int64, 0, len(items))
	for start := 0; start < len(items); start += writeBatch {
		end := min(start+writeBatch, len(items))
		got, err := c.postItems(ctx, path, key, items[start:end], sent[start:end])
		if err != nil {
			return ids, batchError(err, start, end, len(items))
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// matchCreated orders the created ids like the request: by request_id when every answer
// echoes a distinct one that was sent (amoCRM echoes an item's index when it got none),
// else by position.
func matchCreated(got []createdRef, sent []string) ([]int64, error) {
	if len(got) != len(sent) {
		return nil, fmt.Errorf("sent %d entities, the answer lists %d", len(sent), len(got))
	}
	pos := make(map[string]int, len(sent))
	for i, id := range sent {
		if id == "" {
			id = strconv.Itoa(i)
		}
		pos[id] = i
	}
	out := make([]int64, len(sent))
	if len(pos) == len(sent) {
		filled := 0
		for _, g := range got {
			i, ok := pos[requestIDOf(g.RequestID)]
			if !ok || out[i] != 0 {
				break
			}
			out[i] = g.ID
			filled++
		}
		if filled == len(sent) {
			return out, nil
		}
	}
	for i, g := range got {
		out[i] = g.ID
	}
	return out, nil
}

// requestIDOf reads a request_id, which amoCRM sends as a string (a number is taken too).
func requestIDOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

type fieldValueOut struct {
	Value    string `json:"value"`
	EnumCode string `json:"enum_code,omitempty"`
}

type fieldOut struct {
	// FieldID names a field the account added (FieldCode empty); system fields go by code.
	FieldID   int64           `json:"field_id,omitempty"`
	FieldCode string          `json:"field_code,omitempty"`
	Values    []fieldValueOut `json:"values"`
}

type contactOut struct {
	Name               string     `json:"name,omitempty"`
	ResponsibleUserID  int64      `json:"responsible_user_id,omitempty"`
	CustomFieldsValues []fieldOut `json:"custom_fields_values,omitempty"`
	RequestID          string     `json:"request_id,omitempty"`
}

// contactFields writes phones to the PHONE field and emails to EMAIL, both as WORK.
func contactFields(phones []crm.Phone, emails []string) []fieldOut {
	var out []fieldOut
	if len(phones) > 0 {
		f := fieldOut{FieldCode: phoneFieldCode}
		for _, p := range phones {
			f.Values = append(f.Values, fieldValueOut{Value: string(p), EnumCode: "WORK"})
		}
		out = append(out, f)
	}
	if len(emails) > 0 {
		f := fieldOut{FieldCode: "EMAIL"}
		for _, e := range emails {
			f.Values = append(f.Values, fieldValueOut{Value: e, EnumCode: "WORK"})
		}
		out = append(out, f)
	}
	return out
}

// CreateContacts creates contacts and returns their ids in the order of cs.
func (c *Client) CreateContacts(ctx context.Context, cs []crm.NewContact) ([]int64, error) {
	items := make([]contactOut, len(cs))
	sent := make([]string, len(cs))
	for i, n := range cs {
		items[i] = contactOut{
			Name: n.Name, ResponsibleUserID: int64(n.Responsible),
			CustomFieldsValues: append(contactFields(n.Phones, n.Emails), accountFields(n.Fields)...), RequestID: n.RequestID,
		}
		sent[i] = n.RequestID
	}
	return create(ctx, c, contactsPath, "contacts", items, sent)
}

type tagOut struct {
	Name string `json:"name"`
}

type leadOut struct {
	Name              string `json:"name,omitempty"`
	PipelineID        int64  `json:"pipeline_id,omitempty"`
	StatusID          int64  `json:"status_id,omitempty"`
	ResponsibleUserID int64  `json:"responsible_user_id,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
	Embedded          *struct {
		Contacts []idRef  `json:"contacts,omitempty"`
		Tags     []tagOut `json:"tags,omitempty"`
	} `json:"_embedded,omitempty"`
}

// CreateLeads creates leads linked to their contacts and returns their ids in the order
// of ls.
func (c *Client) CreateLeads(ctx context.Context, ls []crm.NewLead) ([]int64, error) {
	items := make([]leadOut, len(ls))
	sent := make([]string, len(ls))
	for i, n := range ls {
		l := leadOut{
			Name: n.Name, PipelineID: n.PipelineID, StatusID: n.StatusID,
			ResponsibleUserID: int64(n.Responsible), RequestID: n.RequestID,
		}
		if len(n.ContactIDs) > 0 || len(n.Tags) > 0 {
			l.Embedded = &struct {
				Contacts []idRef  `json:"contacts,omitempty"`
				Tags     []tagOut `json:"tags,omitempty"`
			}{}
			for _, id := range n.ContactIDs {
				l.Embedded.Contacts = append(l.Embedded.Contacts, idRef{ID: id})
			}
			for _, t := range n.Tags {
				l.Embedded.Tags = append(l.Embedded.Tags, tagOut{Name: t})
			}
		}
		items[i], sent[i] = l, n.RequestID
	}
	return create(ctx, c, leadsPath, "leads", items, sent)
}

type taskOut struct {
	Text              string `json:"text"`
	CompleteTill      int64  `json:"complete_till"`
	TaskTypeID        int64  `json:"task_type_id,omitempty"`
	ResponsibleUserID int64  `json:"responsible_user_id,omitempty"`
	CreatedBy         int64  `json:"created_by,omitempty"`
	EntityType        string `json:"entity_type,omitempty"`
	EntityID          int64  `json:"entity_id,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
}

// CreateTasks creates tasks and returns their ids in the order of ts. A task without an
// entity (Entity "") is the account's own; TypeID 0 leaves amoCRM's default type.
func (c *Client) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]int64, error) {
	items := make([]taskOut, len(ts))
	sent := make([]string, len(ts))
	for i, t := range ts {
		o := taskOut{
			Text: t.Text, TaskTypeID: t.TypeID, ResponsibleUserID: int64(t.Responsible),
			CreatedBy: int64(t.CreatedBy), EntityID: t.EntityID, RequestID: t.RequestID,
		}
		if !t.CompleteTill.IsZero() {
			o.CompleteTill = t.CompleteTill.Unix()
		}
		if t.Entity != "" {
			p, err := entityPath(t.Entity)
			if err != nil {
				return nil, apiError(http.MethodPost, tasksPath, fmt.Errorf("task %d: %w", i, err))
			}
			o.EntityType = p
		}
		items[i], sent[i] = o, t.RequestID
	}
	return create(ctx, c, tasksPath, "tasks", items, sent)
}

type taskDTO struct {
	ID                int64   `json:"id"`
	Text              string  `json:"text"`
	TaskTypeID        int64   `json:"task_type_id"`
	ResponsibleUserID int64   `json:"responsible_user_id"`
	EntityType        *string `json:"entity_type"`
	EntityID          *int64  `json:"entity_id"`
	CompleteTill      int64   `json:"complete_till"`
	IsCompleted       bool    `json:"is_completed"`
}

func (d taskDTO) task() crm.Task {
	t := crm.Task{
		ID: d.ID, Text: d.Text, TypeID: d.TaskTypeID, Responsible: crm.UserID(d.ResponsibleUserID),
		CompleteTill: unixTime(d.CompleteTill), Completed: d.IsCompleted,
	}
	if d.EntityType != nil {
		t.Entity = entityOf(*d.EntityType)
	}
	if d.EntityID != nil {
		t.EntityID = *d.EntityID
	}
	return t
}

// OpenTasks lists the entity's tasks that are not completed, overdue ones included.
func (c *Client) OpenTasks(ctx context.Context, entity crm.EntityType, id int64) ([]crm.Task, error) {
	p, err := entityPath(entity)
	if err != nil {
		return nil, apiError(http.MethodGet, tasksPath, err)
	}
	if id <= 0 {
		return nil, apiError(http.MethodGet, tasksPath, fmt.Errorf("%w: %s id %d", crm.ErrNotFound, entity, id))
	}
	return c.batches.openTasks(ctx, p, id)
}

type responsibleOut struct {
	ID                int64 `json:"id"`
	ResponsibleUserID int64 `json:"responsible_user_id"`
}

// SetResponsible gives an entity to another user. amoCRM reports the change in a webhook
// like any other, with crmlink's user as modified_user_id.
func (c *Client) SetResponsible(ctx context.Context, entity crm.EntityType, id int64, user crm.UserID) error {
	p, err := entityPath(entity)
	if err != nil {
		return apiError(http.MethodPatch, "/api/v4/", err)
	}
	path := "/api/v4/" + p
	switch {
	case id <= 0:
		return apiError(http.MethodPatch, path, fmt.Errorf("%w: %s id %d", crm.ErrNotFound, entity, id))
	case user <= 0:
		return apiError(http.MethodPatch, path, errors.New("no responsible user given"))
	}
	_, err = c.write(ctx, http.MethodPatch, path, []responsibleOut{{ID: id, ResponsibleUserID: int64(user)}})
	return err
}

// seconds rounds a duration to whole seconds, amoCRM's unit for call durations.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(d.Round(time.Second) / time.Second)
}
