package amocrm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/crmlink/crmlink/crm"
)

// defaultCallSource is the source of a call note that names none: amoCRM shows it on the
// card next to the call.
const defaultCallSource = "crmlink"

// noteTypes are the call note types by direction.
var noteTypes = map[crm.CallDirection]string{crm.CallIn: "call_in", crm.CallOut: "call_out"}

type callParams struct {
	Uniq            string `json:"uniq"`
	Duration        int64  `json:"duration"`
	Source          string `json:"source"`
	Link            string `json:"link,omitempty"`
	Phone           string `json:"phone"`
	CallStatus      int    `json:"call_status,omitempty"`
	CallResult      string `json:"call_result,omitempty"`
	CallResponsible int64  `json:"call_responsible,omitempty"`
}

type textParams struct {
	Text string `json:"text"`
}

type noteOut struct {
	EntityID int64  `json:"entity_id"`
	NoteType string `json:"note_type"`
	// CreatedBy and ResponsibleUserID credit a call note to the manager: amoCRM's call
	// statistics count a call for its created_by (without it, for the integration's user).
	CreatedBy         int64 `json:"created_by,omitempty"`
	ResponsibleUserID int64 `json:"responsible_user_id,omitempty"`
	Params            any   `json:"params"`
}

// AddCallNotes adds call_in / call_out notes, each to its entity, with the call's uniq,
// duration in seconds, status and recording link, credited (created_by,
// responsible_user_id, params.call_responsible) to the note's Responsible. amoCRM takes notes per entity type, so
// the notes go out grouped by it, in order within a group. Nothing here dedupes by uniq:
// the caller keeps its own keys (amoCRM does not document what a second uniq does).
func (c *Client) AddCallNotes(ctx context.Context, ns []crm.CallNote) error {
	groups := map[string][]noteOut{}
	var order []string
	for i, n := range ns {
		p, err := entityPath(n.Entity)
		if err == nil && noteTypes[n.Direction] == "" {
			err = fmt.Errorf("unknown call direction %q: want inbound or outbound", n.Direction)
		}
		if err != nil {
			return apiError(http.MethodPost, "/api/v4/"+string(n.Entity)+"/notes", fmt.Errorf("note %d: %w", i, err))
		}
		source := n.Source
		if source == "" {
			source = defaultCallSource
		}
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], noteOut{
			EntityID: n.EntityID, NoteType: noteTypes[n.Direction],
			CreatedBy: int64(n.Responsible), ResponsibleUserID: int64(n.Responsible),
			Params: callParams{
				Uniq: n.Uniq, Duration: seconds(n.Duration), Source: source, Link: n.Link,
				Phone: string(n.Phone), CallStatus: int(n.Status), CallResult: n.Result,
				CallResponsible: int64(n.Responsible),
			},
		})
	}
	for _, p := range order {
		if err := c.addNotes(ctx, "/api/v4/"+p+"/notes", groups[p]); err != nil {
			return err
		}
	}
	return nil
}

// CallNoteExists looks through the entity's call notes for one with this uniq.
func (c *Client) CallNoteExists(ctx context.Context, entity crm.EntityType, id int64, uniq string) (bool, error) {
	return c.noteExists(ctx, entity, id, []string{"call_in", "call_out"}, func(p noteParamsIn) bool { return p.Uniq == uniq })
}

// TextNoteExists looks through the entity's plain ("common") notes for one with this
// text: a retry whose first attempt may have added the note asks before adding it again.
func (c *Client) TextNoteExists(ctx context.Context, entity crm.EntityType, id int64, text string) (bool, error) {
	text = strings.TrimSpace(text)
	return c.noteExists(ctx, entity, id, []string{"common"}, func(p noteParamsIn) bool { return strings.TrimSpace(p.Text) == text })
}

// noteParamsIn is what noteExists reads of a note's params.
type noteParamsIn struct {
	Uniq string `json:"uniq"`
	Text string `json:"text"`
}

// noteExists reads the entity's notes of these types (GET /api/v4/{entity}/{id}/notes
// with filter[note_type][]) and reports whether one matches.
func (c *Client) noteExists(ctx context.Context, entity crm.EntityType, id int64, types []string, match func(noteParamsIn) bool) (bool, error) {
	p, err := entityPath(entity)
	if err != nil {
		return false, apiError(http.MethodGet, "/api/v4/"+string(entity)+"/notes", err)
	}
	q := url.Values{"limit": {"250"}, "filter[note_type][]": types}
	type noteIn struct {
		Params noteParamsIn `json:"params"`
	}
	notes, err := listAll[noteIn](ctx, c, "/api/v4/"+p+"/"+strconv.FormatInt(id, 10)+"/notes", q, "notes")
	if err != nil {
		return false, err
	}
	for _, n := range notes {
		if match(n.Params) {
			return true, nil
		}
	}
	return false, nil
}

// AddTextNote adds a plain ("common") note to an entity.
func (c *Client) AddTextNote(ctx context.Context, entity crm.EntityType, id int64, text string) error {
	p, err := entityPath(entity)
	if err != nil {
		return apiError(http.MethodPost, "/api/v4/"+string(entity)+"/notes", err)
	}
	return c.addNotes(ctx, "/api/v4/"+p+"/notes", []noteOut{{EntityID: id, NoteType: "common", Params: textParams{Text: text}}})
}

// addNotes posts notes of one entity type in batches and checks every note was created.
func (c *Client) addNotes(ctx context.Context, path string, notes []noteOut) error {
	if len(notes) == 0 {
		return nil
	}
	if len(notes) <= writeBatch {
		raw, err := encodeItems(http.MethodPost, path, notes)
		if err != nil {
			return err
		}
		_, err = c.batches.post(ctx, path, "notes", raw, make([]string, len(notes)))
		return err
	}
	for start := 0; start < len(notes); start += writeBatch {
		end := min(start+writeBatch, len(notes))
		if _, err := c.postItems(ctx, path, "notes", notes[start:end], make([]string, end-start)); err != nil {
			return batchError(err, start, end, len(notes))
		}
	}
	return nil
}
