package chatbridge

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Config is the `chat:` section of crmlink.yaml. Start from Defaults, decode the file over
// it (keys left out keep their default), then Validate. Every field has a yaml tag and no
// map is inlined, so a decoder with unknown-key checking rejects a misspelt key.
type Config struct {
	// CRMUserID is the amoCRM user crmlink's token acts as. A responsible change whose
	// webhook names it as modified_user_id was made by crmlink and is not synced back.
	// Give crmlink a user of its own: changes a person makes as that user are ignored too.
	CRMUserID crm.UserID `yaml:"crm_user_id"`
	// GuardWindow is how long a change crmlink wrote is recognised when it comes back as
	// a webhook; chat vendors ask for 5 s between changes.
	GuardWindow time.Duration `yaml:"guard_window"`
	// MaxWrites bounds the writes (CRM entities plus chats) one handled change may make.
	MaxWrites int `yaml:"max_writes"`
	// DialogIdle is how long a chat stays quiet before its next inbound message counts as
	// a dialog opening (and takes the CRM's responsible again).
	DialogIdle time.Duration `yaml:"dialog_idle"`
	// CRMToChat selects the CRM entities whose responsible is given to the client's chats.
	CRMToChat Direction `yaml:"crm_to_chat"`
	// ChatToCRM selects the CRM entities that take the responsible assigned in a chat.
	ChatToCRM Direction `yaml:"chat_to_crm"`
	// Platforms are the chat platform accounts bound to this CRM account.
	Platforms []PlatformConfig `yaml:"platforms"`
	// Users map chat users to CRM users, with their chat role.
	Users []UserConfig `yaml:"users"`
}

// Direction is one direction of the responsible sync.
type Direction struct {
	Enabled bool `yaml:"enabled"`
	// Entities are lead (alias deal), contact and company. With several selected, CRM to
	// chat takes the most recently changed one; chat to CRM sets all of them (open leads
	// only: a closed deal keeps its history).
	Entities []crm.EntityType `yaml:"entities"`
}

// PlatformConfig is one chat platform account.
type PlatformConfig struct {
	Platform PlatformName `yaml:"platform"`
	// Company is the platform's account (company) id this CRM account is bound to. One CRM
	// account bound to two companies of one platform breaks the sync, so it is an error.
	Company string `yaml:"company"`
	// Sync turns responsible sync on for the platform (not available for jivo, whose
	// webhooks only feed online-chat leads).
	Sync bool `yaml:"sync"`
	// APIURL is the platform's API base URL (or the chat sandbox's).
	APIURL string `yaml:"api_url"`
	// APIKey authenticates crmlink to Wazzup's API (chatapp signs in with email,
	// password and app_id instead: its tokens expire daily).
	APIKey string `yaml:"api_key"`
	// Email, Password and AppID are what ChatApp's tokens.make takes (chatapp only): the
	// account's login and the app id from its personal cabinet. crmlink makes, stores and
	// renews the token pair itself.
	Email    string `yaml:"email"`
	Password string `yaml:"password"`
	AppID    string `yaml:"app_id"`
	// WebhookSecret authenticates the platform's webhooks: Wazzup sends it as
	// "Authorization: Bearer <secret>" (its crmKey); ChatApp and Jivo call a URL that ends
	// with it (/v1/chat/chatapp/<secret>).
	WebhookSecret string `yaml:"webhook_secret"`
	// Licenses are ChatApp's licenses (connected messenger numbers) crmlink looks chats
	// up in; chatapp only.
	Licenses []License `yaml:"licenses"`
}

// License is a ChatApp license: one connected messenger account.
type License struct {
	ID string `yaml:"id"`
	// Messenger is ChatApp's messenger type of the license, e.g. grWhatsApp, telegram.
	Messenger string `yaml:"messenger"`
}

// Role is what a user may do in the chats crmlink offers.
type Role string

const (
	// RoleManager sees and writes only chats of clients they are responsible for.
	RoleManager Role = "manager"
	// RoleSupervisor sees and writes all chats.
	RoleSupervisor Role = "supervisor"
	// RoleQualityControl sees all chats and writes none.
	RoleQualityControl Role = "quality_control"
)

// UserConfig binds one CRM user to their users on the chat platforms.
type UserConfig struct {
	CRMUserID crm.UserID `yaml:"crm_user_id"`
	// Name is for people reading the file and the messages.
	Name string `yaml:"name"`
	// Role defaults to manager.
	Role Role `yaml:"role"`
	// The user's ids on each platform; empty when the user is not on it.
	Wazzup  string `yaml:"wazzup"`
	ChatApp string `yaml:"chatapp"`
	Jivo    string `yaml:"jivo"`
}

// ChatID returns the user's id on a platform.
func (u UserConfig) ChatID(p PlatformName) string {
	switch p {
	case Wazzup:
		return u.Wazzup
	case ChatApp:
		return u.ChatApp
	case Jivo:
		return u.Jivo
	}
	return ""
}

// EffectiveRole is the role with the default applied.
func (u UserConfig) EffectiveRole() Role {
	if u.Role == "" {
		return RoleManager
	}
	return u.Role
}

// Defaults: both directions on for deals and contacts, the vendors' 5 s guard window.
func Defaults() Config {
	return Config{
		GuardWindow: DefaultGuardWindow,
		MaxWrites:   DefaultMaxWrites,
		DialogIdle:  DefaultDialogIdle,
		CRMToChat:   Direction{Enabled: true, Entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}},
		ChatToCRM:   Direction{Enabled: true, Entities: []crm.EntityType{crm.EntityLead, crm.EntityContact}},
	}
}

// Defaults of Config.
const (
	DefaultGuardWindow = 5 * time.Second
	DefaultMaxWrites   = 50
	DefaultDialogIdle  = time.Hour
)

// entityAlias reads "deal" as lead: amoCRM's interface says deal, its API lead.
func entityAlias(e crm.EntityType) crm.EntityType {
	if e == "deal" {
		return crm.EntityLead
	}
	return e
}

// selected returns the direction's entity types, aliases resolved, without duplicates.
func (d Direction) selected() []crm.EntityType {
	var out []crm.EntityType
	for _, e := range d.Entities {
		if e = entityAlias(e); !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// Validate returns one message per problem, each naming its key under "chat." and what is
// allowed; nil when the configuration is usable.
func (c Config) Validate() []string {
	var v problems
	if c.CRMUserID < 0 {
		v.add("chat.crm_user_id", "is %d; allowed: the CRM user id crmlink's token acts as (a positive number), or 0 when unknown", c.CRMUserID)
	}
	if c.GuardWindow < time.Second || c.GuardWindow > 5*time.Minute {
		v.add("chat.guard_window", "is %s; allowed: 1s to 5m, written with a unit such as 5s (a bare number is read as nanoseconds)", c.GuardWindow)
	}
	if c.MaxWrites < 1 || c.MaxWrites > 1000 {
		v.add("chat.max_writes", "is %d; allowed: 1 to 1000", c.MaxWrites)
	}
	if c.DialogIdle < time.Minute || c.DialogIdle > 30*24*time.Hour {
		v.add("chat.dialog_idle", "is %s; allowed: 1m to 720h, written with a unit such as 1h", c.DialogIdle)
	}
	v.direction("chat.crm_to_chat", c.CRMToChat)
	v.direction("chat.chat_to_crm", c.ChatToCRM)
	v.platforms(c.Platforms)
	v.users(c.Users, c.Platforms)
	return v
}

type problems []string

func (v *problems) add(key, format string, args ...any) {
	*v = append(*v, key+": "+fmt.Sprintf(format, args...))
}

func (v *problems) direction(key string, d Direction) {
	seen := map[crm.EntityType]bool{}
	for i, e := range d.Entities {
		k := fmt.Sprintf("%s.entities[%d]", key, i)
		switch entityAlias(e) {
		case crm.EntityLead, crm.EntityContact, crm.EntityCompany:
		default:
			v.add(k, "is %q; allowed: lead (or deal), contact, company", e)
			continue
		}
		if seen[entityAlias(e)] {
			v.add(k, "is %q, selected twice; list each entity type once", e)
		}
		seen[entityAlias(e)] = true
	}
	if d.Enabled && len(d.Entities) == 0 {
		v.add(key+".entities", "is empty while %s.enabled is true; select at least one of lead, contact, company", key)
	}
}

func (v *problems) platforms(ps []PlatformConfig) {
	first := map[PlatformName]int{}
	for i, p := range ps {
		k := fmt.Sprintf("chat.platforms[%d]", i)
		if !slices.Contains(Platforms, p.Platform) {
			v.add(k+".platform", "is %q; allowed: wazzup, chatapp, jivo", p.Platform)
			continue
		}
		if j, dup := first[p.Platform]; dup {
			other := ps[j]
			if other.Company != p.Company {
				v.add(k+".company", "is %q while chat.platforms[%d] already binds this CRM account to %s company %q; "+
					"one CRM account can be bound to one %s company only (two companies on one account is a known reason responsible sync fails): remove one",
					p.Company, j, p.Platform, other.Company, p.Platform)
			} else {
				v.add(k+".platform", "is %q, already configured in chat.platforms[%d]; list each platform once", p.Platform, j)
			}
			continue
		}
		first[p.Platform] = i
		if strings.TrimSpace(p.WebhookSecret) == "" {
			v.add(k+".webhook_secret", "is empty; set a long random secret that authenticates %s's webhooks", p.Platform)
		} else if len(p.WebhookSecret) < 16 {
			v.add(k+".webhook_secret", "is %d characters; use at least 16 random characters", len(p.WebhookSecret))
		}
		if p.Platform == Jivo {
			if p.Sync {
				v.add(k+".sync", "is true; jivo has no API crmlink writes to, its webhooks only feed online-chat leads: set sync: false")
			}
			continue
		}
		if !p.Sync {
			continue
		}
		if u, err := url.Parse(p.APIURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add(k+".api_url", "is %q; allowed: an absolute http or https URL of the %s API", p.APIURL, p.Platform)
		}
		if p.Platform == ChatApp {
			v.chatappCredentials(k, p)
		} else if strings.TrimSpace(p.APIKey) == "" {
			v.add(k+".api_key", "is empty; sync writes to the %s API and needs its key", p.Platform)
		}
		if p.Platform == ChatApp {
			if len(p.Licenses) == 0 {
				v.add(k+".licenses", "is empty; list the ChatApp licenses (id and messenger) whose chats follow the CRM")
			}
			for j, l := range p.Licenses {
				if strings.TrimSpace(l.ID) == "" || strings.ContainsAny(l.ID, "/?#") {
					v.add(fmt.Sprintf("%s.licenses[%d].id", k, j), "is %q; allowed: the license id ChatApp shows", l.ID)
				}
				if strings.TrimSpace(l.Messenger) == "" || strings.ContainsAny(l.Messenger, "/?#") {
					v.add(fmt.Sprintf("%s.licenses[%d].messenger", k, j), "is %q; allowed: the license's messenger type, e.g. grWhatsApp", l.Messenger)
				}
			}
		} else if len(p.Licenses) > 0 {
			v.add(k+".licenses", "is set for %s; licenses are a chatapp setting", p.Platform)
		}
		if p.Platform != ChatApp && (p.Email != "" || p.Password != "" || p.AppID != "") {
			v.add(k+".email", "is set for %s; email, password and app_id are chatapp settings (%s uses api_key)", p.Platform, p.Platform)
		}
	}
}

// chatappCredentials checks what ChatApp's tokens.make needs. A fixed api_key is refused:
// ChatApp's access tokens expire after 24 hours, so a pasted one stops the sync within a day.
func (v *problems) chatappCredentials(k string, p PlatformConfig) {
	if p.APIKey != "" {
		v.add(k+".api_key", "is set, but ChatApp's access tokens expire after 24 hours; remove it and set email, app_id and "+
			"password (env CRMLINK_CHAT_CHATAPP_PASSWORD) from ChatApp's personal cabinet: crmlink makes and renews the tokens itself")
	}
	if strings.TrimSpace(p.Email) == "" {
		v.add(k+".email", "is empty; sync signs in to ChatApp's API with the account's email (env CRMLINK_CHAT_CHATAPP_EMAIL)")
	}
	if strings.TrimSpace(p.AppID) == "" {
		v.add(k+".app_id", "is empty; set the appId shown in ChatApp's personal cabinet (env CRMLINK_CHAT_CHATAPP_APP_ID)")
	}
	if p.Password == "" {
		v.add(k+".password", "is empty; set CRMLINK_CHAT_CHATAPP_PASSWORD to the ChatApp account's password")
	}
}

// chatUserSeen is where a chat user id was first listed.
type chatUserSeen struct {
	index int
	crm   crm.UserID
	role  Role
}

func (v *problems) users(us []UserConfig, ps []PlatformConfig) {
	configured := map[PlatformName]bool{}
	for _, p := range ps {
		configured[p.Platform] = true
	}
	crmSeen := map[crm.UserID]int{}
	chatSeen := map[PlatformName]map[string]chatUserSeen{}
	for i, u := range us {
		k := fmt.Sprintf("chat.users[%d]", i)
		if u.CRMUserID <= 0 {
			v.add(k+".crm_user_id", "is %d; allowed: a CRM user id (a positive number)", u.CRMUserID)
		} else if j, dup := crmSeen[u.CRMUserID]; dup {
			v.add(k+".crm_user_id", "is %d, already listed in chat.users[%d]; list each CRM user once with all their chat ids", u.CRMUserID, j)
		} else {
			crmSeen[u.CRMUserID] = i
		}
		switch u.EffectiveRole() {
		case RoleManager, RoleSupervisor, RoleQualityControl:
		default:
			v.add(k+".role", "is %q; allowed: manager, supervisor, quality_control", u.Role)
		}
		ids := 0
		for _, p := range Platforms {
			id := u.ChatID(p)
			if id == "" {
				continue
			}
			ids++
			pk := k + "." + string(p)
			if strings.TrimSpace(id) != id {
				v.add(pk, "is %q; remove the spaces around the id", id)
			}
			if !configured[p] {
				v.add(pk, "is set but no %s platform is configured under chat.platforms", p)
			}
			if chatSeen[p] == nil {
				chatSeen[p] = map[string]chatUserSeen{}
			}
			first, dup := chatSeen[p][id]
			if !dup {
				chatSeen[p][id] = chatUserSeen{index: i, crm: u.CRMUserID, role: u.EffectiveRole()}
				continue
			}
			if first.crm != u.CRMUserID {
				v.add(pk, "is %q, the %s user already mapped to CRM user %d in chat.users[%d]; a chat user mapped to two CRM users breaks responsible sync: keep one",
					id, p, first.crm, first.index)
			}
			if first.role != u.EffectiveRole() {
				v.add(pk, "is %q, the %s user already given role %s in chat.users[%d]; a chat user in two roles breaks responsible sync: give them one role",
					id, p, first.role, first.index)
			}
			if first.crm == u.CRMUserID && first.role == u.EffectiveRole() {
				v.add(pk, "is %q, already listed in chat.users[%d]; list each chat user once", id, first.index)
			}
		}
		if ids == 0 {
			v.add(k, "has no chat id; set at least one of wazzup, chatapp, jivo")
		}
	}
}
