package chatbridge

import (
	"fmt"

	"github.com/crmlink/crmlink/crm"
)

// UserMap maps chat users to CRM users and back, per platform. It is read-only once built
// and safe for concurrent use.
type UserMap struct {
	toCRM  map[PlatformName]map[string]crm.UserID
	toChat map[PlatformName]map[crm.UserID]string
	roles  map[crm.UserID]Role
}

// NewUserMap builds the map from the configured users. It refuses the ambiguities Validate
// reports (a chat user mapped to two CRM users, a CRM user listed twice), so a map never
// picks one of two answers silently.
func NewUserMap(users []UserConfig) (*UserMap, error) {
	m := &UserMap{
		toCRM:  map[PlatformName]map[string]crm.UserID{},
		toChat: map[PlatformName]map[crm.UserID]string{},
		roles:  map[crm.UserID]Role{},
	}
	for i, u := range users {
		if u.CRMUserID <= 0 {
			return nil, fmt.Errorf("chatbridge: chat.users[%d]: crm_user_id %d is not a CRM user id", i, u.CRMUserID)
		}
		if _, dup := m.roles[u.CRMUserID]; dup {
			return nil, fmt.Errorf("chatbridge: chat.users[%d]: CRM user %d is listed twice", i, u.CRMUserID)
		}
		m.roles[u.CRMUserID] = u.EffectiveRole()
		for _, p := range Platforms {
			id := u.ChatID(p)
			if id == "" {
				continue
			}
			if m.toCRM[p] == nil {
				m.toCRM[p], m.toChat[p] = map[string]crm.UserID{}, map[crm.UserID]string{}
			}
			if other, dup := m.toCRM[p][id]; dup {
				return nil, fmt.Errorf("chatbridge: chat.users[%d]: %s user %q is already mapped to CRM user %d", i, p, id, other)
			}
			m.toCRM[p][id] = u.CRMUserID
			m.toChat[p][u.CRMUserID] = id
		}
	}
	return m, nil
}

// CRMUser returns the CRM user of a chat user.
func (m *UserMap) CRMUser(p PlatformName, chatUser string) (crm.UserID, bool) {
	u, ok := m.toCRM[p][chatUser]
	return u, ok
}

// ChatUser returns the chat user of a CRM user on a platform.
func (m *UserMap) ChatUser(p PlatformName, u crm.UserID) (string, bool) {
	id, ok := m.toChat[p][u]
	return id, ok
}

// Role returns a CRM user's chat role; ok is false for a user not in the map.
func (m *UserMap) Role(u crm.UserID) (Role, bool) {
	r, ok := m.roles[u]
	return r, ok
}
