package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

// noteEntities are the entity types whose notes the sandbox serves.
var noteEntities = map[string]bool{"leads": true, "contacts": true, "companies": true}

// Call statuses amoCRM knows: 1 voicemail ... 7 busy, 8 undefined.
const (
	minCallStatus = 1
	maxCallStatus = 8
)

type noteIn struct {
	EntityID          int64  `json:"entity_id"`
	NoteType          string `json:"note_type"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	CreatedBy         int64  `json:"created_by"`
	Params            struct {
		Text            string      `json:"text"`
		Service         string      `json:"service"`
		Uniq            looseString `json:"uniq"`
		Duration        int64       `json:"duration"`
		Source          string      `json:"source"`
		Link            string      `json:"link"`
		Phone           looseString `json:"phone"`
		CallStatus      int         `json:"call_status"`
		CallResult      string      `json:"call_result"`
		CallResponsible looseString `json:"call_responsible"`
	} `json:"params"`
}

// noteFrom checks a posted note and builds it without id and times; entityID is the id
// from the path (/{entity}/{id}/notes), 0 when the note names its entity. s.mu is held.
func (s *Server) noteFrom(reqID, entity string, entityID int64, in noteIn, v *invalid) Note {
	if entityID == 0 {
		entityID = in.EntityID
	}
	p := in.Params
	n := Note{
		EntityType: entity, EntityID: entityID, NoteType: in.NoteType, RequestID: reqID,
		ResponsibleUserID: s.orAPIUser(in.ResponsibleUserID), CreatedBy: s.orAPIUser(in.CreatedBy),
		Params: NoteParams{
			Text: p.Text, Service: p.Service, Uniq: string(p.Uniq), Duration: p.Duration, Source: p.Source,
			Link: p.Link, Phone: string(p.Phone), CallStatus: p.CallStatus, CallResult: p.CallResult,
			CallResponsible: string(p.CallResponsible),
		},
	}
	switch {
	case entityID <= 0:
		v.add(reqID, codeNotBlank, "entity_id", detailNotBlank)
	case !s.st.entityExists(entity, entityID):
		v.add(reqID, codeNotFound, "entity_id", detailNotFound)
	}
	s.checkUser(v, reqID, "responsible_user_id", in.ResponsibleUserID)
	s.checkUser(v, reqID, "created_by", in.CreatedBy)
	blank := func(path, val string) {
		if strings.TrimSpace(val) == "" {
			v.add(reqID, codeNotBlank, path, detailNotBlank)
		}
	}
	switch in.NoteType {
	case "":
		v.add(reqID, codeNotBlank, "note_type", detailNotBlank)
	case NoteCommon:
		blank("params.text", p.Text)
	case NoteServiceMessage:
		blank("params.service", p.Service)
		blank("params.text", p.Text)
	case NoteCallIn, NoteCallOut:
		blank("params.uniq", string(p.Uniq))
		blank("params.phone", string(p.Phone))
		blank("params.source", p.Source)
		if p.Duration < 0 {
			v.add(reqID, codeChoice, "params.duration", detailNegative)
		}
		if p.CallStatus != 0 && (p.CallStatus < minCallStatus || p.CallStatus > maxCallStatus) {
			v.add(reqID, codeChoice, "params.call_status", detailChoice)
		}
	default:
		v.add(reqID, codeChoice, "note_type", detailChoice)
	}
	return n
}

// notesHandler binds a notes handler to an entity type and, for /{entity}/{id}/notes, an id.
func (s *Server) notesHandler(entity string, id int64, h func(http.ResponseWriter, *http.Request, string, int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, entity, id) }
}

// postNotes serves POST /api/v4/{entity}/notes and /api/v4/{entity}/{id}/notes. Every note
// is kept, a second call note with the same uniq included (amoCRM does not document what
// it does with one); Created shows them all.
func (s *Server) postNotes(w http.ResponseWriter, r *http.Request, entity string, entityID int64) {
	type createdNote struct {
		ID        int64  `json:"id"`
		EntityID  int64  `json:"entity_id"`
		RequestID string `json:"request_id"`
		Links     links  `json:"_links"`
	}
	rn, out, ok := applyItems(s, w, r, func(reqID string, in noteIn, v *invalid) Note {
		return s.noteFrom(reqID, entity, entityID, in, v)
	}, func(rn renderer, n Note, _ string, now int64) createdNote {
		n.ID, n.CreatedAt = s.st.nextID(), now
		s.st.notes[n.ID] = &n
		s.st.created.notes = append(s.st.created.notes, n.ID)
		return createdNote{ID: n.ID, EntityID: n.EntityID, RequestID: n.RequestID, Links: rn.noteLinks(&n)}
	})
	if ok {
		rn.writeCreated(w, r, "notes", out)
	}
}

type noteJSON struct {
	ID                int64          `json:"id"`
	EntityID          int64          `json:"entity_id"`
	CreatedBy         int64          `json:"created_by"`
	UpdatedBy         int64          `json:"updated_by"`
	CreatedAt         int64          `json:"created_at"`
	UpdatedAt         int64          `json:"updated_at"`
	ResponsibleUserID int64          `json:"responsible_user_id"`
	GroupID           int64          `json:"group_id"`
	NoteType          string         `json:"note_type"`
	Params            map[string]any `json:"params"`
	AccountID         int64          `json:"account_id"`
	Links             links          `json:"_links"`
}

func (rn renderer) noteLinks(n *Note) links {
	return links{Self: link{Href: rn.base + "/api/v4/" + n.EntityType + "/" + strconv.FormatInt(n.EntityID, 10) +
		"/notes/" + strconv.FormatInt(n.ID, 10)}}
}

func (rn renderer) note(n *Note) noteJSON {
	p := n.Params
	params := map[string]any{}
	switch n.NoteType {
	case NoteCallIn, NoteCallOut:
		params = map[string]any{
			"uniq": p.Uniq, "duration": p.Duration, "source": p.Source, "link": p.Link, "phone": p.Phone,
			"call_result": p.CallResult,
		}
		if p.CallStatus != 0 {
			params["call_status"] = p.CallStatus
		}
		if p.CallResponsible != "" {
			params["call_responsible"] = numberOrString(p.CallResponsible)
		}
	case NoteServiceMessage:
		params["service"], params["text"] = p.Service, p.Text
	default:
		params["text"] = p.Text
	}
	return noteJSON{
		ID: n.ID, EntityID: n.EntityID, CreatedBy: n.CreatedBy, UpdatedBy: n.CreatedBy,
		CreatedAt: n.CreatedAt, UpdatedAt: n.CreatedAt, ResponsibleUserID: n.ResponsibleUserID,
		NoteType: n.NoteType, Params: params, AccountID: rn.accountID, Links: rn.noteLinks(n),
	}
}

// getNotes serves GET /api/v4/{entity}/notes (filter[entity_id], filter[note_type],
// filter[id]) and /api/v4/{entity}/{id}/notes, in id order.
func (s *Server) getNotes(w http.ResponseWriter, r *http.Request, entity string, entityID int64) {
	q, p, ok := listQuery(w, r)
	if !ok {
		return
	}
	entityIDs, ok := intFilter(q, "entity_id")
	if !ok {
		writeInvalid(w, "filter.entity_id", "entity_id must be integers")
		return
	}
	if entityID != 0 {
		entityIDs = map[int64]bool{entityID: true}
	}
	types := stringFilter(q, "note_type")
	serveList(s, w, r, p, 0, "notes", func(st *store) map[int64]*Note { return st.notes },
		func(n *Note) bool {
			return n.EntityType == entity && (entityIDs == nil || entityIDs[n.EntityID]) && (types == nil || types[n.NoteType])
		}, renderer.note)
}
