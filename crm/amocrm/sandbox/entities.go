package sandbox

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// fieldIn is one element of custom_fields_values in a write: a field named by field_code
// (PHONE, EMAIL) or field_id, with its values.
type fieldIn struct {
	FieldID   int64  `json:"field_id"`
	FieldCode string `json:"field_code"`
	Values    []struct {
		Value    looseString `json:"value"`
		EnumID   int64       `json:"enum_id"`
		EnumCode string      `json:"enum_code"`
	} `json:"values"`
}

// The enum codes of amoCRM's multitext system fields.
var (
	phoneEnums = []string{"WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"}
	emailEnums = []string{"WORK", "PRIV", "OTHER"}
)

type contactIn struct {
	Name               string    `json:"name"`
	FirstName          string    `json:"first_name"`
	LastName           string    `json:"last_name"`
	ResponsibleUserID  int64     `json:"responsible_user_id"`
	CustomFieldsValues []fieldIn `json:"custom_fields_values"`
}

// contactFrom checks a posted contact and builds it without id and times; prefix is the
// path of the contact inside its item ("" for POST /contacts). s.mu is held.
func (s *Server) contactFrom(reqID, prefix string, in contactIn, v *invalid) Contact {
	c := Contact{Name: strings.TrimSpace(in.Name), ResponsibleUserID: s.orAPIUser(in.ResponsibleUserID)}
	if c.Name == "" {
		c.Name = strings.TrimSpace(in.FirstName + " " + in.LastName)
	}
	s.checkUser(v, reqID, prefix+"responsible_user_id", in.ResponsibleUserID)
	names := map[int64]string{}
	for n, id := range s.st.fieldIDs {
		names[id] = n
	}
	for i, f := range in.CustomFieldsValues {
		at := prefix + "custom_fields_values." + strconv.Itoa(i) + "."
		var enums []string
		var dst *[]string
		switch {
		case f.FieldCode == "PHONE" || (f.FieldCode == "" && f.FieldID == phoneFieldID):
			enums, dst = phoneEnums, &c.Phones
		case f.FieldCode == "EMAIL" || (f.FieldCode == "" && f.FieldID == emailFieldID):
			enums, dst = emailEnums, &c.Emails
		case f.FieldCode == "" && names[f.FieldID] != "":
		default:
			path, detail := "field_code", detailChoice
			if f.FieldCode == "" {
				path, detail = "field_id", "The field does not exist."
			}
			v.add(reqID, codeChoice, at+path, detail)
			continue
		}
		if len(f.Values) == 0 {
			v.add(reqID, codeNotBlank, at+"values", detailNotBlank)
		}
		for j, val := range f.Values {
			vat := at + "values." + strconv.Itoa(j) + "."
			text := strings.TrimSpace(string(val.Value))
			if text == "" {
				v.add(reqID, codeNotBlank, vat+"value", detailNotBlank)
				continue
			}
			if dst == nil {
				if c.Fields == nil {
					c.Fields = map[string]string{}
				}
				c.Fields[names[f.FieldID]] = text
				continue
			}
			if val.EnumCode != "" && !slices.Contains(enums, val.EnumCode) {
				v.add(reqID, codeChoice, vat+"enum_code", detailChoice)
				continue
			}
			*dst = append(*dst, text)
		}
	}
	return c
}

// postContacts serves POST /api/v4/contacts.
func (s *Server) postContacts(w http.ResponseWriter, r *http.Request) {
	rn, out, ok := applyItems(s, w, r, func(reqID string, in contactIn, v *invalid) Contact {
		return s.contactFrom(reqID, "", in, v)
	}, func(rn renderer, c Contact, reqID string, now int64) createdRef {
		c.ID, c.CreatedAt, c.UpdatedAt = s.st.nextID(), now, now
		s.st.addContact(&c)
		return createdRef{ID: c.ID, RequestID: reqID, Links: rn.self("/api/v4/contacts", c.ID)}
	})
	if ok {
		rn.writeCreated(w, r, "contacts", out)
	}
}

type leadIn struct {
	Name              string `json:"name"`
	PipelineID        int64  `json:"pipeline_id"`
	StatusID          int64  `json:"status_id"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	Embedded          struct {
		Contacts []struct {
			ID int64 `json:"id"`
		} `json:"contacts"`
		Tags []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"tags"`
	} `json:"_embedded"`
}

// leadFrom checks a posted lead and builds it without id and times. The sandbox has no
// list of pipelines: any pipeline and status is taken, 0 means the main pipeline and its
// first stage. linkContacts is false inside an Unsorted entry, whose contact comes apart.
// s.mu is held.
func (s *Server) leadFrom(reqID, prefix string, in leadIn, linkContacts bool, v *invalid) Lead {
	l := Lead{
		Name: strings.TrimSpace(in.Name), PipelineID: in.PipelineID, StatusID: in.StatusID,
		ResponsibleUserID: s.orAPIUser(in.ResponsibleUserID),
	}
	if in.PipelineID < 0 {
		v.add(reqID, codeChoice, prefix+"pipeline_id", detailChoice)
	}
	if in.StatusID < 0 {
		v.add(reqID, codeChoice, prefix+"status_id", detailChoice)
	}
	if l.PipelineID == 0 {
		l.PipelineID = s.settings.Pipeline.ID
	}
	if l.StatusID == 0 {
		l.StatusID = s.settings.Pipeline.StatusID
	}
	s.checkUser(v, reqID, prefix+"responsible_user_id", in.ResponsibleUserID)
	if linkContacts {
		for i, c := range in.Embedded.Contacts {
			if s.st.contacts[c.ID] == nil {
				v.add(reqID, codeNotFound, prefix+"_embedded.contacts."+strconv.Itoa(i)+".id", detailNotFound)
				continue
			}
			if !slices.Contains(l.ContactIDs, c.ID) {
				l.ContactIDs = append(l.ContactIDs, c.ID)
			}
		}
	}
	for i, t := range in.Embedded.Tags {
		name := strings.TrimSpace(t.Name)
		if name == "" && t.ID != 0 {
			for n, id := range s.st.tagIDs {
				if id == t.ID {
					name = n
				}
			}
		}
		if name == "" {
			v.add(reqID, codeNotBlank, prefix+"_embedded.tags."+strconv.Itoa(i)+".name", detailNotBlank)
			continue
		}
		if !slices.Contains(l.Tags, name) {
			l.Tags = append(l.Tags, name)
		}
	}
	return l
}

// newLeadName is what amoCRM calls a lead created without a name.
func newLeadName(id int64) string { return "Сделка #" + strconv.FormatInt(id, 10) }

// postLeads serves POST /api/v4/leads; a lead's _embedded.contacts are linked both ways.
func (s *Server) postLeads(w http.ResponseWriter, r *http.Request) {
	rn, out, ok := applyItems(s, w, r, func(reqID string, in leadIn, v *invalid) Lead {
		return s.leadFrom(reqID, "", in, true, v)
	}, func(rn renderer, l Lead, reqID string, now int64) createdRef {
		l.ID, l.CreatedAt, l.UpdatedAt = s.st.nextID(), now, now
		if l.Name == "" {
			l.Name = newLeadName(l.ID)
		}
		s.st.addLead(&l)
		return createdRef{ID: l.ID, RequestID: reqID, Links: rn.self("/api/v4/leads", l.ID)}
	})
	if ok {
		rn.writeCreated(w, r, "leads", out)
	}
}

type patchIn struct {
	ID                int64   `json:"id"`
	Name              *string `json:"name"`
	ResponsibleUserID *int64  `json:"responsible_user_id"`
	StatusID          *int64  `json:"status_id"`
	PipelineID        *int64  `json:"pipeline_id"`
}

// singular names an amoCRM entity type the way ResponsibleUpdate does.
var singular = map[string]string{"leads": "lead", "contacts": "contact", "companies": "company"}

// patcher serves PATCH /api/v4/{leads|contacts|companies}: name, responsible_user_id and,
// for leads, pipeline_id and status_id. A new responsible user sends the same webhook as a
// manager's change would, with the token's user as modified_user_id, before the answer.
func (s *Server) patcher(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var hooks []url.Values
		var target string
		rn, out, ok := applyItems(s, w, r, func(reqID string, in patchIn, v *invalid) patchIn {
			switch {
			case in.ID <= 0:
				v.add(reqID, codeNotBlank, "id", detailNotBlank)
			case !s.st.entityExists(entity, in.ID):
				v.add(reqID, codeNotFound, "id", detailNotFound)
			}
			if in.ResponsibleUserID != nil {
				if *in.ResponsibleUserID == 0 {
					v.add(reqID, codeChoice, "responsible_user_id", detailChoice)
				}
				s.checkUser(v, reqID, "responsible_user_id", *in.ResponsibleUserID)
			}
			if in.PipelineID != nil && (entity != "leads" || *in.PipelineID <= 0) {
				v.add(reqID, codeChoice, "pipeline_id", detailChoice)
			}
			if in.StatusID != nil && (entity != "leads" || *in.StatusID <= 0) {
				v.add(reqID, codeChoice, "status_id", detailChoice)
			}
			return in
		}, func(rn renderer, in patchIn, reqID string, now int64) updatedRef {
			if in.ResponsibleUserID != nil {
				form, old, err := s.applyResponsible(ResponsibleUpdate{
					Entity: singular[entity], ID: in.ID, ResponsibleUserID: *in.ResponsibleUserID, ModifiedUserID: s.settings.APIUserID,
				})
				if err == nil && old != *in.ResponsibleUserID {
					hooks = append(hooks, form)
				}
			}
			s.applyPatch(entity, in, now)
			target = s.settings.WebhookURL
			return updatedRef{ID: in.ID, UpdatedAt: now, RequestID: reqID, Links: rn.self("/api/v4/"+entity, in.ID)}
		})
		if !ok {
			return
		}
		if target != "" {
			ctx := context.WithoutCancel(r.Context())
			for _, form := range hooks {
				s.postWebhook(ctx, target, form)
			}
		}
		rn.writeCreated(w, r, entity, out)
	}
}

// applyPatch changes the name, pipeline and status a patch sets; s.mu is held.
func (s *Server) applyPatch(entity string, in patchIn, now int64) {
	switch entity {
	case "leads":
		l := s.st.leads[in.ID]
		if in.Name != nil {
			l.Name = *in.Name
		}
		if in.PipelineID != nil {
			l.PipelineID = *in.PipelineID
		}
		if in.StatusID != nil {
			l.StatusID = *in.StatusID
		}
		l.UpdatedAt = now
	case "contacts":
		c := s.st.contacts[in.ID]
		if in.Name != nil {
			c.Name = *in.Name
		}
		c.UpdatedAt = now
	case "companies":
		c := s.st.companies[in.ID]
		if in.Name != nil {
			c.Name = *in.Name
		}
		c.UpdatedAt = now
	}
}
