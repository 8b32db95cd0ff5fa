package amocrm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/crmlink/crmlink/crm"
)

const contactsPath = "/api/v4/contacts"

// FindContactsByPhone searches by the national significant number, which amoCRM's free-text
// query finds however the card spells the number, then keeps only contacts whose PHONE field
// holds that number: the query also matches names, notes and any other field.
func (c *Client) FindContactsByPhone(ctx context.Context, phone crm.Phone) ([]crm.Contact, error) {
	national := phone.National()
	if national == "" {
		return nil, apiError(http.MethodGet, contactsPath, errors.New("empty phone number"))
	}
	q := url.Values{"query": {national}, "with": {"leads"}, "limit": {"250"}}
	found, err := listAll[contactDTO](ctx, c, contactsPath, q, "contacts")
	if err != nil {
		return nil, err
	}
	crm.NoteSearchReturned(ctx, len(found))
	var out []crm.Contact
	for _, d := range found {
		if c.hasPhone(d, phone) {
			out = append(out, d.contact())
		}
	}
	return out, nil
}

func (c *Client) hasPhone(d contactDTO, phone crm.Phone) bool {
	for _, written := range d.phones() {
		if phone.SameNumber(written, c.region) {
			return true
		}
	}
	return false
}

// Contact reads one contact with its lead ids; a missing contact is crm.ErrNotFound.
func (c *Client) Contact(ctx context.Context, id int64) (crm.Contact, error) {
	path := contactsPath + "/" + strconv.FormatInt(id, 10)
	if id <= 0 {
		return crm.Contact{}, apiError(http.MethodGet, path, fmt.Errorf("%w: contact id %d", crm.ErrNotFound, id))
	}
	var d contactDTO
	if err := c.getOne(ctx, path, url.Values{"with": {"leads"}}, &d); err != nil {
		return crm.Contact{}, err
	}
	return d.contact(), nil
}
