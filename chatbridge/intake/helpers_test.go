package intake_test

import (
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/testrig"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func redisClient(t *testing.T) *redis.Client { return testrig.Redis(t) }

func withoutTimes(cs []sandbox.Contact) []sandbox.Contact {
	for i := range cs {
		cs[i].CreatedAt, cs[i].UpdatedAt = 0, 0
	}
	return cs
}

func withoutLeadTimes(ls []sandbox.Lead) []sandbox.Lead {
	for i := range ls {
		ls[i].CreatedAt, ls[i].UpdatedAt = 0, 0
	}
	return ls
}
