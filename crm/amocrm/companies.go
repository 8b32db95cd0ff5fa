package amocrm

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/crmlink/crmlink/crm"
)

const companiesPath = "/api/v4/companies"

// Company reads one company; a missing company is crm.ErrNotFound.
func (c *Client) Company(ctx context.Context, id int64) (crm.Company, error) {
	path := companiesPath + "/" + strconv.FormatInt(id, 10)
	if id <= 0 {
		return crm.Company{}, apiError(http.MethodGet, path, fmt.Errorf("%w: company id %d", crm.ErrNotFound, id))
	}
	var d companyDTO
	if err := c.getOne(ctx, path, nil, &d); err != nil {
		return crm.Company{}, err
	}
	return d.company(), nil
}
