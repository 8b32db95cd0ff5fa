package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/adapters"
	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/routing"
)

// chat is the chat side: the platforms' webhooks feed the queue; the queue feeds the
// responsible sync; chat-access answers roles.
type chat struct {
	inbound  map[chatbridge.PlatformName]chatbridge.Inbound
	entities *chatbridge.Entities
	sync     *chatbridge.Sync
	access   *chatbridge.Access
	leads    *intake.Engine // nil while chat.leads is off
	log      zerolog.Logger
	// assigned counts chats made a manager's, for the live page and the metrics.
	assigned func(crm.UserID, int)
}

// newChat builds the chat side; nil when no chat platform is configured. It needs the CRM
// and the event queue, which a valid configuration with chat platforms always has.
func (p *App) newChat() (*chat, error) {
	cfg := p.cfg.Chat
	if !cfg.Enabled() {
		return nil, nil
	}
	if p.crm == nil || p.events == nil {
		return nil, errors.New("chat: chat.platforms needs amocrm configured")
	}
	region := p.cfg.Routing.DefaultRegion
	set, err := adapters.Build(cfg.Config, adapters.Options{Region: region, Timeout: p.cfg.AmoCRM.RequestTimeout, ChatAppTokens: p.chatAppTokens})
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	var guard chatbridge.GuardStore = chatbridge.NewMemoryGuard(nil)
	if p.redis != nil {
		guard = chatbridge.NewRedisGuard(p.redis, "", nil)
	}
	opts := append(set.SyncOptions(), chatbridge.WithRegion(region),
		chatbridge.WithLogger(p.log.With().Str("component", "chat-sync").Logger()),
		chatbridge.WithChatsAssigned(p.page.chatsAssigned))
	s, err := chatbridge.NewSync(cfg.Config, p.crm, p.crm, guard, opts...)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	c := &chat{inbound: set.Inbound, sync: s, access: chatbridge.NewAccess(s.Users(), p.crm),
		entities: chatbridge.NewEntities(p.crm, p.crm, s.Users(), p.amoCRMCardURI, p.log.With().Str("component", "chat-entities").Logger()),
		log:      p.log.With().Str("component", "chat-leads").Logger(), assigned: p.page.chatsAssigned}
	if cfg.Leads.Enabled {
		if c.leads, err = p.newLeads(s.Users()); err != nil {
			return nil, err
		}
	}
	events.On(p.events.dispatch, chatbridge.ChatEvents, c.handleChat)
	events.On(p.events.dispatch, events.CRMChanges, s.OnCRMChange)
	return c, nil
}

// chatAppTokens keeps ChatApp's token pair where crmlink keeps its state: in Redis when
// it is configured (shared by every instance), else in data_dir.
func (p *App) chatAppTokens(pc chatbridge.PlatformConfig) chatapp.TokenStore {
	if p.redis != nil {
		return chatapp.RedisTokens{RDB: p.redis, Key: "crmlink:chatapp:tokens:" + pc.Company}
	}
	return chatapp.FileTokens{Path: filepath.Join(p.cfg.DataDir, "chatapp-tokens.json")}
}

// amoCRMCardURI is the link to an entity's card in amoCRM, for platforms that show it.
func (p *App) amoCRMCardURI(e crm.EntityType, id int64) string {
	section := map[crm.EntityType]string{crm.EntityContact: "contacts", crm.EntityLead: "leads", crm.EntityCompany: "companies"}[e]
	if section == "" || p.cfg.AmoCRM.BaseURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/%s/detail/%d", strings.TrimSuffix(p.cfg.AmoCRM.BaseURL, "/"), section, id)
}

// newLeads builds the online-chat leads engine: the managers' schedules and flags from
// `managers:`, round-robin turns in Redis when it is configured, what each chat created in
// the rules engine's state.
func (p *App) newLeads(users *chatbridge.UserMap) (*intake.Engine, error) {
	ms := make([]intake.Manager, 0, len(p.cfg.Managers))
	for i, m := range p.cfg.Managers {
		sch, err := routing.ParseSchedule(routing.ScheduleSpec(m.Schedule))
		if err != nil {
			return nil, fmt.Errorf("managers[%d].schedule: %w", i, err)
		}
		ms = append(ms, intake.Manager{User: crm.UserID(m.CRMUser), TakesNewClients: m.TakesNew(), Schedule: sch})
	}
	var rot intake.Rotation = intake.NewMemoryRotation()
	if p.redis != nil {
		rot = intake.NewRedisRotation(p.redis, "")
	}
	eng, err := intake.New(p.cfg.Chat.Leads, p.crm, p.events.state,
		intake.WithManagers(ms), intake.WithRotation(rot), intake.WithClients(&p.router),
		intake.WithChatUsers(func(id string) (crm.UserID, bool) { return users.CRMUser(chatbridge.Jivo, id) }),
		intake.WithLogger(p.log.With().Str("component", "chat-leads").Logger()))
	if err != nil {
		return nil, fmt.Errorf("chat.leads: %w", err)
	}
	return eng, nil
}

// handleChat acts on a chat event: Jivo's events feed the online-chat leads, the other
// platforms' the responsible sync. Both read and write amoCRM at background priority:
// call-path lookups go first.
func (c *chat) handleChat(ctx context.Context, ev chatbridge.Event) error {
	ctx = amocrm.WithPriority(ctx, amocrm.PriorityBackground)
	if ev.Platform != chatbridge.Jivo {
		_, err := c.sync.HandleChatEvent(ctx, ev)
		return err
	}
	if c.leads == nil {
		return events.Dropped("a Jivo event while chat.leads is off")
	}
	res, err := c.leads.Handle(ctx, ev)
	if err != nil {
		return err
	}
	if res.LeadCreated && !res.Repeated {
		c.assigned(res.Responsible, 1)
	}
	c.log.Info().Str("event", ev.ID).Str("kind", string(ev.Kind)).Interface("result", res).Msg("online-chat lead handled")
	return nil
}

// chatRoutes registers the platforms' webhook endpoints and chat-access: Wazzup
// authenticates with a bearer header, ChatApp and Jivo with the secret ending the URL.
func (p *App) chatRoutes(api *httpapi.Server) {
	c := p.chat
	if c == nil {
		return
	}
	paths := map[chatbridge.PlatformName]string{
		chatbridge.Wazzup:  "POST /v1/chat/wazzup",
		chatbridge.ChatApp: "POST /v1/chat/chatapp/{secret}",
		chatbridge.Jivo:    "POST /v1/chat/jivo/{secret}",
	}
	for name, in := range c.inbound {
		// At background priority like the sync: Wazzup waits 30 s, a call does not.
		api.Handle(paths[name], httpapi.Webhook, httpapi.ChatWebhook(in, p.events.store, backgroundEntities{c.entities}, p.log))
		if s, ok := in.(chatbridge.SignerIn); ok {
			// Not required: a refused ChatApp password stops the chat sync, never routing.
			api.AddCheck(httpapi.Check{Name: "chat_" + string(name), State: func(context.Context) (bool, string) { return s.Health() }})
		}
	}
	api.Handle("GET /v1/chat-access", httpapi.Read, httpapi.ChatAccess(c.access, p.cfg.Routing.DefaultRegion, p.log))
	api.Handle("POST /v1/chat/reassign", httpapi.Admin, httpapi.ChatReassign(c, p.cfg.Routing.DefaultRegion, p.log))
}

// backgroundEntities makes the CRM entities a chat webhook asks for at background priority.
type backgroundEntities struct{ m *chatbridge.Entities }

func (b backgroundEntities) MakeEntity(ctx context.Context, e chatbridge.Event) (chatbridge.CRMEntity, error) {
	return b.m.MakeEntity(amocrm.WithPriority(ctx, amocrm.PriorityBackground), e)
}

// Reassign implements httpapi.ChatReassigner: the sync's reassignment under the roles, at
// background priority.
func (c *chat) Reassign(ctx context.Context, by crm.UserID, phone crm.Phone, to crm.UserID) (chatbridge.Reassignment, error) {
	return c.sync.Reassign(amocrm.WithPriority(ctx, amocrm.PriorityBackground), c.access, by, phone, to)
}
