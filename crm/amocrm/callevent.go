package amocrm

import (
	"context"
	"errors"
	"net/http"

	"github.com/crmlink/crmlink/crm"
)

// callEventsPath is amoCRM's call event (the incoming-call card): a v2 method, the only
// one crmlink uses (https://www.amocrm.ru/developers/content/telephony/call_event).
const callEventsPath = "/api/v2/events"

type callEvent struct {
	Type        string  `json:"type"`
	PhoneNumber string  `json:"phone_number"`
	Users       []int64 `json:"users"`
}

// NotifyCall shows the incoming-call card to the users whose phones ring: amoCRM finds the
// contact, company, deal or customer of the number itself (or offers to create a contact).
// It runs at card priority, after the call path's lookups and before background work, and
// gives up when its slot would come after ctx's deadline (a late card is worse than none).
// Any 2xx answer is success: nothing in the body is needed.
func (c *Client) NotifyCall(ctx context.Context, phone crm.Phone, users []crm.UserID) error {
	if len(users) == 0 {
		return apiError(http.MethodPost, callEventsPath, errors.New("no users to notify"))
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = int64(u)
	}
	body := map[string][]callEvent{"add": {{Type: "phone_call", PhoneNumber: string(phone), Users: ids}}}
	_, err := c.write(WithPriority(ctx, PriorityCard), http.MethodPost, callEventsPath, body)
	return err
}
