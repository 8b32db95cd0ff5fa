package amocrm

import (
	"context"
	"net/url"
	"strconv"

	"github.com/crmlink/crmlink/crm"
)

const leadsPath = "/api/v4/leads"

// leadIDsPerRequest keeps the filter's query string short; amoCRM's page limit is 250.
const leadIDsPerRequest = 50

// Leads reads leads by id, open and closed alike, with their status; ids amoCRM does not
// know are left out. No ids, no request.
func (c *Client) Leads(ctx context.Context, ids []int64) ([]crm.Lead, error) {
	var out []crm.Lead
	for start := 0; start < len(ids); start += leadIDsPerRequest {
		q := url.Values{"limit": {"250"}}
		for _, id := range ids[start:min(start+leadIDsPerRequest, len(ids))] {
			q.Add("filter[id][]", strconv.FormatInt(id, 10))
		}
		found, err := listAll[leadDTO](ctx, c, leadsPath, q, "leads")
		if err != nil {
			return nil, err
		}
		for _, d := range found {
			out = append(out, d.lead())
		}
	}
	return out, nil
}
