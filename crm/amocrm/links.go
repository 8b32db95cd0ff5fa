package amocrm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/crmlink/crmlink/crm"
)

// embeddedContacts is the part of a lead or company read with=contacts that lists its
// contacts.
type embeddedContacts struct {
	Embedded struct {
		Contacts []struct {
			ID int64 `json:"id"`
		} `json:"contacts"`
	} `json:"_embedded"`
}

func (e embeddedContacts) ids() []int64 {
	out := make([]int64, 0, len(e.Embedded.Contacts))
	for _, c := range e.Embedded.Contacts {
		out = append(out, c.ID)
	}
	return out
}

// LeadContacts returns the ids of a lead's contacts (GET /api/v4/leads/{id}?with=contacts);
// a missing lead is crm.ErrNotFound. It implements chatbridge.Links.
func (c *Client) LeadContacts(ctx context.Context, leadID int64) ([]int64, error) {
	return c.contactsOf(ctx, leadsPath, "lead", leadID)
}

// CompanyContacts returns the ids of a company's contacts
// (GET /api/v4/companies/{id}?with=contacts); a missing company is crm.ErrNotFound.
func (c *Client) CompanyContacts(ctx context.Context, companyID int64) ([]int64, error) {
	return c.contactsOf(ctx, companiesPath, "company", companyID)
}

func (c *Client) contactsOf(ctx context.Context, base, what string, id int64) ([]int64, error) {
	path := base + "/" + strconv.FormatInt(id, 10)
	if id <= 0 {
		return nil, apiError(http.MethodGet, path, fmt.Errorf("%w: %s id %d", crm.ErrNotFound, what, id))
	}
	var d embeddedContacts
	if err := c.getOne(ctx, path, url.Values{"with": {"contacts"}}, &d); err != nil {
		return nil, err
	}
	return d.ids(), nil
}
