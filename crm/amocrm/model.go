package amocrm

import (
	"encoding/json"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// phoneFieldCode is the field_code amoCRM gives the system phone field of contacts.
const phoneFieldCode = "PHONE"

// idRef is an {"id": n} entry of _embedded.
type idRef struct {
	ID int64 `json:"id"`
}

type customField struct {
	FieldID   int64  `json:"field_id"`
	FieldCode string `json:"field_code"`
	Values    []struct {
		// Value is a string for phones but a number, bool or object for other field types.
		Value json.RawMessage `json:"value"`
	} `json:"values"`
}

type contactDTO struct {
	ID                 int64         `json:"id"`
	Name               string        `json:"name"`
	ResponsibleUserID  int64         `json:"responsible_user_id"`
	UpdatedAt          int64         `json:"updated_at"`
	CustomFieldsValues []customField `json:"custom_fields_values"`
	Embedded           struct {
		Leads     []idRef `json:"leads"`
		Companies []idRef `json:"companies"`
	} `json:"_embedded"`
}

func (d contactDTO) contact() crm.Contact {
	c := crm.Contact{
		ID:          d.ID,
		Name:        d.Name,
		Responsible: crm.UserID(d.ResponsibleUserID),
		Phones:      d.phones(),
		UpdatedAt:   unixTime(d.UpdatedAt),
	}
	if len(d.Embedded.Companies) > 0 {
		c.CompanyID = d.Embedded.Companies[0].ID
	}
	for _, l := range d.Embedded.Leads {
		c.LeadIDs = append(c.LeadIDs, l.ID)
	}
	return c
}

// phones returns the values of the PHONE field as written on the card.
func (d contactDTO) phones() []string {
	var out []string
	for _, f := range d.CustomFieldsValues {
		if f.FieldCode != phoneFieldCode {
			continue
		}
		for _, v := range f.Values {
			var s string
			if json.Unmarshal(v.Value, &s) == nil && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

type companyDTO struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	UpdatedAt         int64  `json:"updated_at"`
}

func (d companyDTO) company() crm.Company {
	return crm.Company{ID: d.ID, Name: d.Name, Responsible: crm.UserID(d.ResponsibleUserID), UpdatedAt: unixTime(d.UpdatedAt)}
}

type leadDTO struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	StatusID          int64  `json:"status_id"`
	PipelineID        int64  `json:"pipeline_id"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	CreatedAt         int64  `json:"created_at"`
	UpdatedAt         int64  `json:"updated_at"`
}

func (d leadDTO) lead() crm.Lead {
	return crm.Lead{
		ID:          d.ID,
		Name:        d.Name,
		StatusID:    d.StatusID,
		PipelineID:  d.PipelineID,
		Responsible: crm.UserID(d.ResponsibleUserID),
		CreatedAt:   unixTime(d.CreatedAt),
		UpdatedAt:   unixTime(d.UpdatedAt),
	}
}

type userDTO struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Rights struct {
		// IsActive is a pointer because an absent flag must not disable a user.
		IsActive *bool `json:"is_active"`
	} `json:"rights"`
}

func (d userDTO) user() crm.User {
	return crm.User{ID: crm.UserID(d.ID), Name: d.Name, Email: d.Email, Active: d.Rights.IsActive == nil || *d.Rights.IsActive}
}

func unixTime(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
