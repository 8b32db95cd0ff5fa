package sandbox

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// The payload shapes below follow amoCRM's v4 documentation for the fields crmlink reads,
// with the neighbouring fields a real account sends filled with plausible values.

type link struct {
	Href string `json:"href"`
}

type links struct {
	Self link  `json:"self"`
	Next *link `json:"next,omitempty"`
}

type ref struct {
	ID    int64 `json:"id"`
	Links links `json:"_links"`
}

type fieldValue struct {
	Value    string `json:"value"`
	EnumID   int64  `json:"enum_id,omitempty"`
	EnumCode string `json:"enum_code,omitempty"`
}

type fieldJSON struct {
	FieldID   int64        `json:"field_id"`
	FieldName string       `json:"field_name"`
	FieldCode *string      `json:"field_code"`
	FieldType string       `json:"field_type"`
	Values    []fieldValue `json:"values"`
}

type tagJSON struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Color *string `json:"color"`
}

type embedded struct {
	Tags      []tagJSON `json:"tags"`
	Companies *[]ref    `json:"companies,omitempty"`
	Leads     *[]ref    `json:"leads,omitempty"`
	Contacts  *[]ref    `json:"contacts,omitempty"`
}

type contactJSON struct {
	ID                 int64       `json:"id"`
	Name               string      `json:"name"`
	FirstName          string      `json:"first_name"`
	LastName           string      `json:"last_name"`
	ResponsibleUserID  int64       `json:"responsible_user_id"`
	GroupID            int64       `json:"group_id"`
	CreatedBy          int64       `json:"created_by"`
	UpdatedBy          int64       `json:"updated_by"`
	CreatedAt          int64       `json:"created_at"`
	UpdatedAt          int64       `json:"updated_at"`
	ClosestTaskAt      *int64      `json:"closest_task_at"`
	IsDeleted          bool        `json:"is_deleted"`
	CustomFieldsValues []fieldJSON `json:"custom_fields_values"`
	AccountID          int64       `json:"account_id"`
	Links              links       `json:"_links"`
	Embedded           embedded    `json:"_embedded"`
}

type companyJSON struct {
	ID                 int64       `json:"id"`
	Name               string      `json:"name"`
	ResponsibleUserID  int64       `json:"responsible_user_id"`
	GroupID            int64       `json:"group_id"`
	CreatedBy          int64       `json:"created_by"`
	UpdatedBy          int64       `json:"updated_by"`
	CreatedAt          int64       `json:"created_at"`
	UpdatedAt          int64       `json:"updated_at"`
	ClosestTaskAt      *int64      `json:"closest_task_at"`
	IsDeleted          bool        `json:"is_deleted"`
	CustomFieldsValues []fieldJSON `json:"custom_fields_values"`
	AccountID          int64       `json:"account_id"`
	Links              links       `json:"_links"`
	Embedded           embedded    `json:"_embedded"`
}

type leadJSON struct {
	ID                int64    `json:"id"`
	Name              string   `json:"name"`
	Price             int64    `json:"price"`
	ResponsibleUserID int64    `json:"responsible_user_id"`
	GroupID           int64    `json:"group_id"`
	StatusID          int64    `json:"status_id"`
	PipelineID        int64    `json:"pipeline_id"`
	LossReasonID      *int64   `json:"loss_reason_id"`
	CreatedBy         int64    `json:"created_by"`
	UpdatedBy         int64    `json:"updated_by"`
	CreatedAt         int64    `json:"created_at"`
	UpdatedAt         int64    `json:"updated_at"`
	ClosedAt          *int64   `json:"closed_at"`
	ClosestTaskAt     *int64   `json:"closest_task_at"`
	IsDeleted         bool     `json:"is_deleted"`
	AccountID         int64    `json:"account_id"`
	Links             links    `json:"_links"`
	Embedded          embedded `json:"_embedded"`
}

type rightsJSON struct {
	Leads         map[string]string `json:"leads"`
	Contacts      map[string]string `json:"contacts"`
	Companies     map[string]string `json:"companies"`
	Tasks         map[string]string `json:"tasks"`
	MailAccess    bool              `json:"mail_access"`
	CatalogAccess bool              `json:"catalog_access"`
	IsAdmin       bool              `json:"is_admin"`
	IsFree        bool              `json:"is_free"`
	IsActive      bool              `json:"is_active"`
	GroupID       *int64            `json:"group_id"`
	RoleID        *int64            `json:"role_id"`
}

type userJSON struct {
	ID     int64      `json:"id"`
	Name   string     `json:"name"`
	Email  string     `json:"email"`
	Lang   string     `json:"lang"`
	Rights rightsJSON `json:"rights"`
	Links  links      `json:"_links"`
}

// renderer builds payloads with absolute links for the host the request came to.
type renderer struct {
	base      string
	accountID int64
	fieldIDs  map[string]int64
	tagIDs    map[string]int64
}

func newRenderer(r *http.Request, accountID int64, st *store) renderer {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return renderer{base: scheme + "://" + r.Host, accountID: accountID, fieldIDs: st.fieldIDs, tagIDs: st.tagIDs}
}

func (rn renderer) self(path string, id int64) links {
	return links{Self: link{Href: rn.base + path + "/" + strconv.FormatInt(id, 10)}}
}

func (rn renderer) refs(path string, ids []int64) *[]ref {
	out := make([]ref, 0, len(ids))
	for _, id := range ids {
		out = append(out, ref{ID: id, Links: rn.self(path, id)})
	}
	return &out
}

func (rn renderer) contact(c *Contact, withLeads bool) contactJSON {
	j := contactJSON{
		ID: c.ID, Name: c.Name, ResponsibleUserID: c.ResponsibleUserID,
		CreatedBy: c.ResponsibleUserID, UpdatedBy: c.ResponsibleUserID,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, AccountID: rn.accountID,
		CustomFieldsValues: rn.fields(c),
		Links:              rn.self("/api/v4/contacts", c.ID),
		Embedded:           embedded{Tags: []tagJSON{}, Companies: rn.refs("/api/v4/companies", nil)},
	}
	if c.CompanyID != 0 {
		j.Embedded.Companies = rn.refs("/api/v4/companies", []int64{c.CompanyID})
	}
	if withLeads {
		j.Embedded.Leads = rn.refs("/api/v4/leads", c.LeadIDs)
	}
	return j
}

func (rn renderer) tags(names []string) []tagJSON {
	out := make([]tagJSON, 0, len(names))
	for _, n := range names {
		out = append(out, tagJSON{ID: rn.tagIDs[n], Name: n})
	}
	return out
}

// fields renders the PHONE and EMAIL fields and the free text fields; amoCRM sends null,
// not [], for a card without custom fields.
func (rn renderer) fields(c *Contact) []fieldJSON {
	var out []fieldJSON
	if len(c.Phones) > 0 {
		code := "PHONE"
		f := fieldJSON{FieldID: phoneFieldID, FieldName: "Телефон", FieldCode: &code, FieldType: "multitext"}
		for _, p := range c.Phones {
			f.Values = append(f.Values, fieldValue{Value: p, EnumID: phoneEnumID, EnumCode: "WORK"})
		}
		out = append(out, f)
	}
	if len(c.Emails) > 0 {
		code := "EMAIL"
		f := fieldJSON{FieldID: emailFieldID, FieldName: "Email", FieldCode: &code, FieldType: "multitext"}
		for _, e := range c.Emails {
			f.Values = append(f.Values, fieldValue{Value: e, EnumID: emailEnumID, EnumCode: "WORK"})
		}
		out = append(out, f)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Fields)) {
		out = append(out, fieldJSON{
			FieldID: rn.fieldIDs[name], FieldName: name, FieldType: "text",
			Values: []fieldValue{{Value: c.Fields[name]}},
		})
	}
	return out
}

// company renders a company; contacts (with=contacts) are embedded when not nil.
func (rn renderer) company(c *Company, contacts []int64) companyJSON {
	j := companyJSON{
		ID: c.ID, Name: c.Name, ResponsibleUserID: c.ResponsibleUserID,
		CreatedBy: c.ResponsibleUserID, UpdatedBy: c.ResponsibleUserID,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, AccountID: rn.accountID,
		Links: rn.self("/api/v4/companies", c.ID), Embedded: embedded{Tags: []tagJSON{}},
	}
	if contacts != nil {
		j.Embedded.Contacts = rn.refs("/api/v4/contacts", contacts)
	}
	return j
}

func (rn renderer) lead(l *Lead, withContacts bool) leadJSON {
	j := leadJSON{
		ID: l.ID, Name: l.Name, ResponsibleUserID: l.ResponsibleUserID,
		StatusID: l.StatusID, PipelineID: l.PipelineID,
		CreatedBy: l.ResponsibleUserID, UpdatedBy: l.ResponsibleUserID,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, AccountID: rn.accountID,
		Links:    rn.self("/api/v4/leads", l.ID),
		Embedded: embedded{Tags: rn.tags(l.Tags), Companies: rn.refs("/api/v4/companies", nil)},
	}
	if l.StatusID == 142 || l.StatusID == 143 {
		closed := l.UpdatedAt
		j.ClosedAt = &closed
	}
	if withContacts {
		j.Embedded.Contacts = rn.refs("/api/v4/contacts", l.ContactIDs)
	}
	return j
}

func (rn renderer) user(u *User) userJSON {
	full := map[string]string{"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"}
	return userJSON{
		ID: u.ID, Name: u.Name, Email: u.Email, Lang: "ru",
		Rights: rightsJSON{
			Leads: full, Contacts: full, Companies: full,
			Tasks:    map[string]string{"edit": "A", "delete": "A"},
			IsActive: u.Active == nil || *u.Active,
		},
		Links: rn.self("/api/v4/users", u.ID),
	}
}
