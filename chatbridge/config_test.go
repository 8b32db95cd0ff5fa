package chatbridge_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/crm"
)

// exampleYAML is the `chat:` section as an administrator writes it.
const exampleYAML = `
crm_user_id: 9000001        # the amoCRM user crmlink's token acts as
guard_window: 5s
crm_to_chat:
  enabled: true
  entities: [deal, contact]  # the most recently changed one wins
chat_to_crm:
  enabled: true
  entities: [lead, contact, company]
platforms:
  - platform: wazzup
    company: "3f9c1a"
    sync: true
    api_url: https://wazzup.example
    api_key: wz-api-key
    webhook_secret: wz-crm-key-0123456789
  - platform: chatapp
    company: "5521"
    sync: true
    api_url: https://chatapp.example
    email: owner@example.com
    app_id: app_5521_1
    password: ca-password
    webhook_secret: ca-secret-0123456789
    licenses:
      - {id: "11021", messenger: grWhatsApp}
  - platform: jivo
    company: "wid-88"
    webhook_secret: jivo-secret-0123456789
users:
  - {crm_user_id: 101, name: Ann, role: manager, wazzup: "101", chatapp: "7"}
  - {crm_user_id: 102, name: Bob, wazzup: "102", chatapp: "8", jivo: "4410"}
  - {crm_user_id: 103, name: Carol, role: supervisor, chatapp: "9"}
  - {crm_user_id: 104, name: Quinn, role: quality_control, chatapp: "10"}
`

func decode(t testing.TB, src string) (chatbridge.Config, error) {
	t.Helper()
	cfg := chatbridge.Defaults()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	return cfg, err
}

func TestDefaultsAndExampleAreValid(t *testing.T) {
	assert.Empty(t, chatbridge.Defaults().Validate())
	cfg, err := decode(t, exampleYAML)
	require.NoError(t, err)
	assert.Empty(t, cfg.Validate())
	assert.Equal(t, crm.UserID(9000001), cfg.CRMUserID)
	assert.Equal(t, 5*time.Second, cfg.GuardWindow)
	assert.Equal(t, chatbridge.DefaultMaxWrites, cfg.MaxWrites, "keys left out keep their default")
	assert.Equal(t, []crm.EntityType{"deal", crm.EntityContact}, cfg.CRMToChat.Entities)
	assert.Equal(t, chatbridge.RoleQualityControl, cfg.Users[3].Role)
	assert.Equal(t, chatbridge.RoleManager, cfg.Users[1].EffectiveRole())

	m, err := chatbridge.NewUserMap(cfg.Users)
	require.NoError(t, err)
	u, ok := m.CRMUser(chatbridge.ChatApp, "8")
	assert.True(t, ok)
	assert.Equal(t, crm.UserID(102), u)
	id, ok := m.ChatUser(chatbridge.Wazzup, 101)
	assert.True(t, ok)
	assert.Equal(t, "101", id)
	_, ok = m.ChatUser(chatbridge.Wazzup, 103)
	assert.False(t, ok, "Carol is not on Wazzup")
	r, ok := m.Role(103)
	assert.True(t, ok)
	assert.Equal(t, chatbridge.RoleSupervisor, r)
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	_, err := decode(t, "guard_windw: 5s\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "guard_windw")
}

// TestConfigValidate: every message names its key under chat. and says what to do; the
// three "why sync does not work" mistakes chat vendors list come first.
func TestConfigValidate(t *testing.T) {
	base := func() chatbridge.Config {
		cfg, err := decode(t, exampleYAML)
		require.NoError(t, err)
		return cfg
	}
	tests := []struct {
		name   string
		change func(c *chatbridge.Config)
		want   []string
	}{
		{
			name: "a chat user mapped to two CRM users",
			change: func(c *chatbridge.Config) {
				c.Users = append(c.Users, chatbridge.UserConfig{CRMUserID: 105, ChatApp: "7"})
			},
			want: []string{`chat.users[4].chatapp: is "7", the chatapp user already mapped to CRM user 101 in chat.users[0]; ` +
				`a chat user mapped to two CRM users breaks responsible sync: keep one`},
		},
		{
			name: "one CRM account bound to two chat companies",
			change: func(c *chatbridge.Config) {
				c.Platforms = append(c.Platforms, chatbridge.PlatformConfig{Platform: chatbridge.Wazzup, Company: "77aa01",
					WebhookSecret: "another-secret-0123456789"})
			},
			want: []string{`chat.platforms[3].company: is "77aa01" while chat.platforms[0] already binds this CRM account to wazzup company "3f9c1a"; ` +
				`one CRM account can be bound to one wazzup company only (two companies on one account is a known reason responsible sync fails): remove one`},
		},
		{
			name: "a chat user in two roles",
			change: func(c *chatbridge.Config) {
				c.Users[3].ChatApp = "9" // Quinn (quality control) given Carol's (supervisor) ChatApp user
			},
			want: []string{
				`chat.users[3].chatapp: is "9", the chatapp user already mapped to CRM user 103 in chat.users[2]; a chat user mapped to two CRM users breaks responsible sync: keep one`,
				`chat.users[3].chatapp: is "9", the chatapp user already given role supervisor in chat.users[2]; a chat user in two roles breaks responsible sync: give them one role`,
			},
		},
		{
			name:   "a CRM user listed twice",
			change: func(c *chatbridge.Config) { c.Users[1].CRMUserID = 101 },
			want:   []string{"chat.users[1].crm_user_id: is 101, already listed in chat.users[0]; list each CRM user once with all their chat ids"},
		},
		{
			name:   "the same platform twice",
			change: func(c *chatbridge.Config) { c.Platforms = append(c.Platforms, c.Platforms[2]) },
			want:   []string{`chat.platforms[3].platform: is "jivo", already configured in chat.platforms[2]; list each platform once`},
		},
		{
			name:   "unknown platform",
			change: func(c *chatbridge.Config) { c.Platforms[2].Platform = "telegram" },
			want: []string{`chat.platforms[2].platform: is "telegram"; allowed: wazzup, chatapp, jivo`,
				"chat.users[1].jivo: is set but no jivo platform is configured under chat.platforms"},
		},
		{
			name: "secrets",
			change: func(c *chatbridge.Config) {
				c.Platforms[0].WebhookSecret = ""
				c.Platforms[1].WebhookSecret = "short"
			},
			want: []string{"chat.platforms[0].webhook_secret: is empty; set a long random secret that authenticates wazzup's webhooks",
				"chat.platforms[1].webhook_secret: is 5 characters; use at least 16 random characters"},
		},
		{
			name: "sync without API",
			change: func(c *chatbridge.Config) {
				c.Platforms[0].APIURL, c.Platforms[0].APIKey = "wazzup.example", ""
				c.Platforms[1].Licenses = nil
			},
			want: []string{`chat.platforms[0].api_url: is "wazzup.example"; allowed: an absolute http or https URL of the wazzup API`,
				"chat.platforms[0].api_key: is empty; sync writes to the wazzup API and needs its key",
				"chat.platforms[1].licenses: is empty; list the ChatApp licenses (id and messenger) whose chats follow the CRM"},
		},
		{
			name: "chatapp signs in with email, password and app_id, not a fixed token",
			change: func(c *chatbridge.Config) {
				c.Platforms[1].APIKey, c.Platforms[1].Email, c.Platforms[1].AppID, c.Platforms[1].Password = "pasted-token", "", " ", ""
				c.Platforms[0].Password = "x"
			},
			want: []string{"chat.platforms[0].email: is set for wazzup; email, password and app_id are chatapp settings (wazzup uses api_key)",
				"chat.platforms[1].api_key: is set, but ChatApp's access tokens expire after 24 hours; remove it and set email, app_id and password " +
					"(env CRMLINK_CHAT_CHATAPP_PASSWORD) from ChatApp's personal cabinet: crmlink makes and renews the tokens itself",
				"chat.platforms[1].email: is empty; sync signs in to ChatApp's API with the account's email (env CRMLINK_CHAT_CHATAPP_EMAIL)",
				"chat.platforms[1].app_id: is empty; set the appId shown in ChatApp's personal cabinet (env CRMLINK_CHAT_CHATAPP_APP_ID)",
				"chat.platforms[1].password: is empty; set CRMLINK_CHAT_CHATAPP_PASSWORD to the ChatApp account's password"},
		},
		{
			name:   "jivo cannot sync",
			change: func(c *chatbridge.Config) { c.Platforms[2].Sync = true },
			want:   []string{"chat.platforms[2].sync: is true; jivo has no API crmlink writes to, its webhooks only feed online-chat leads: set sync: false"},
		},
		{
			name: "licenses",
			change: func(c *chatbridge.Config) {
				c.Platforms[1].Licenses = []chatbridge.License{{ID: "", Messenger: "a/b"}}
				c.Platforms[0].Licenses = []chatbridge.License{{ID: "1", Messenger: "x"}}
			},
			want: []string{"chat.platforms[0].licenses: is set for wazzup; licenses are a chatapp setting",
				`chat.platforms[1].licenses[0].id: is ""; allowed: the license id ChatApp shows`,
				`chat.platforms[1].licenses[0].messenger: is "a/b"; allowed: the license's messenger type, e.g. grWhatsApp`},
		},
		{
			name: "entities",
			change: func(c *chatbridge.Config) {
				c.CRMToChat.Entities = []crm.EntityType{"deal", "lead", "customer"}
				c.ChatToCRM.Entities = nil
			},
			want: []string{`chat.crm_to_chat.entities[1]: is "lead", selected twice; list each entity type once`,
				`chat.crm_to_chat.entities[2]: is "customer"; allowed: lead (or deal), contact, company`,
				"chat.chat_to_crm.entities: is empty while chat.chat_to_crm.enabled is true; select at least one of lead, contact, company"},
		},
		{
			name: "numbers and durations",
			change: func(c *chatbridge.Config) {
				c.CRMUserID, c.GuardWindow, c.MaxWrites, c.DialogIdle = -1, 5, 0, time.Second
			},
			want: []string{"chat.crm_user_id: is -1; allowed: the CRM user id crmlink's token acts as (a positive number), or 0 when unknown",
				"chat.guard_window: is 5ns; allowed: 1s to 5m, written with a unit such as 5s (a bare number is read as nanoseconds)",
				"chat.max_writes: is 0; allowed: 1 to 1000",
				"chat.dialog_idle: is 1s; allowed: 1m to 720h, written with a unit such as 1h"},
		},
		{
			name: "users",
			change: func(c *chatbridge.Config) {
				c.Users = []chatbridge.UserConfig{{CRMUserID: 0, Role: "admin", ChatApp: " 7"}, {CRMUserID: 5}}
			},
			want: []string{"chat.users[0].crm_user_id: is 0; allowed: a CRM user id (a positive number)",
				`chat.users[0].role: is "admin"; allowed: manager, supervisor, quality_control`,
				`chat.users[0].chatapp: is " 7"; remove the spaces around the id`,
				"chat.users[1]: has no chat id; set at least one of wazzup, chatapp, jivo"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(&c)
			assert.Equal(t, tt.want, c.Validate())
		})
	}
}

func TestUserMapRefusesAmbiguity(t *testing.T) {
	_, err := chatbridge.NewUserMap([]chatbridge.UserConfig{{CRMUserID: 1, Wazzup: "a"}, {CRMUserID: 2, Wazzup: "a"}})
	assert.ErrorContains(t, err, `wazzup user "a" is already mapped to CRM user 1`)
	_, err = chatbridge.NewUserMap([]chatbridge.UserConfig{{CRMUserID: 1, Wazzup: "a"}, {CRMUserID: 1, Wazzup: "b"}})
	assert.ErrorContains(t, err, "CRM user 1 is listed twice")
	_, err = chatbridge.NewUserMap([]chatbridge.UserConfig{{CRMUserID: 0}})
	assert.Error(t, err)
	m, err := chatbridge.NewUserMap(nil)
	require.NoError(t, err)
	_, ok := m.CRMUser(chatbridge.Wazzup, "a")
	assert.False(t, ok)
}

// FuzzConfig: any YAML decodes to an error or a config whose validation does not panic.
func FuzzConfig(f *testing.F) {
	f.Add(exampleYAML)
	f.Add("users: [{crm_user_id: 1, chatapp: '1'}, {crm_user_id: 2, chatapp: '1', role: supervisor}]\n")
	f.Add("platforms: [{platform: wazzup}, {platform: wazzup, company: x}]\n")
	f.Add("guard_window: -1\ncrm_to_chat: {entities: [~]}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := decode(t, src)
		if err != nil {
			return
		}
		_ = cfg.Validate()
		_, _ = chatbridge.NewUserMap(cfg.Users)
	})
}
