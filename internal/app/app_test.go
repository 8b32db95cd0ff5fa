package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

func TestRoutingOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Routing.LookupTimeout = 700 * time.Millisecond
	cfg.Routing.Precedence = []string{"contact", "lead"}
	cfg.Managers = []config.Manager{{CRMUser: 5, Name: "Anna", Endpoints: []string{"PJSIP/101"}, Schedule: config.Schedule{Hours: "09:00-18:00"}}}
	opts := routingOptions(cfg.Routing, cfg.Managers)
	assert.Equal(t, []crm.EntityType{crm.EntityContact, crm.EntityLead}, opts.Precedence)
	assert.Equal(t, 700*time.Millisecond, opts.LookupTimeout)
	assert.Equal(t, "RU", opts.Region)
	assert.True(t, opts.CheckManagerStatus)
	require.Len(t, opts.Managers, 1)
	assert.Equal(t, routing.Manager{CRMUser: 5, Name: "Anna", Endpoints: []string{"PJSIP/101"}, Schedule: routing.ScheduleSpec{Hours: "09:00-18:00"}}, opts.Managers[0])
	_, err := routing.New(opts)
	require.NoError(t, err)
}

func TestManagerEndpoints(t *testing.T) {
	got := managerEndpoints([]config.Manager{{CRMUser: 5, Endpoints: []string{"PJSIP/101", "PJSIP/7916@trunk"}}, {CRMUser: 6, Endpoints: []string{"PJSIP/102"}}})
	assert.Equal(t, map[string]crm.UserID{"PJSIP/101": 5, "PJSIP/7916@trunk": 5, "PJSIP/102": 6}, got)
}
