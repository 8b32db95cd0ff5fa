package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"gopkg.in/yaml.v3"
)

// Seed is the whole content of an emulated account: settings and data. The YAML and JSON
// keys are the snake_case names in the tags; unknown keys are an error.
type Seed struct {
	// Token is the long-lived token the API accepts; default DefaultToken.
	Token string `yaml:"token,omitempty" json:"token,omitempty"`
	// RateLimit is how many API requests a sliding second may hold before 429; 0 means
	// DefaultRateLimit, a negative value turns the limit off.
	RateLimit int `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// WebhookURL receives the webhooks of responsible changes and Unsorted decisions.
	WebhookURL string  `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty"`
	Account    Account `yaml:"account,omitempty" json:"account"`
	// APIUserID is the user the token acts as (a long-lived token acts as the admin who made
	// it): created_by of what the API creates and modified_user_id of the webhooks its
	// changes cause, so that a client can recognise its own writes. 0 when unset.
	APIUserID int64 `yaml:"api_user_id,omitempty" json:"api_user_id,omitempty"`
	// Pipeline is the account's main pipeline, where leads created without pipeline_id go.
	Pipeline  Pipeline  `yaml:"pipeline,omitempty" json:"pipeline"`
	OAuth     *OAuth    `yaml:"oauth,omitempty" json:"oauth,omitempty"`
	Users     []User    `yaml:"users" json:"users"`
	Contacts  []Contact `yaml:"contacts" json:"contacts"`
	Companies []Company `yaml:"companies" json:"companies"`
	Leads     []Lead    `yaml:"leads" json:"leads"`
}

// Account is the emulated account's identity, sent in every webhook.
type Account struct {
	ID        int64  `yaml:"id,omitempty" json:"id"`
	Subdomain string `yaml:"subdomain,omitempty" json:"subdomain"`
}

// Pipeline names the main pipeline and the stage a new lead starts in; zero fields take
// DefaultPipelineID and DefaultStatusID.
type Pipeline struct {
	ID       int64 `yaml:"id,omitempty" json:"id"`
	StatusID int64 `yaml:"status_id,omitempty" json:"status_id"`
}

// OAuth configures POST /oauth2/access_token. RefreshToken and AuthCode are the grants the
// sandbox accepts at start; each refresh issues a new pair and retires the old refresh token.
type OAuth struct {
	ClientID     string `yaml:"client_id" json:"client_id"`
	ClientSecret string `yaml:"client_secret" json:"client_secret"`
	RedirectURI  string `yaml:"redirect_uri,omitempty" json:"redirect_uri,omitempty"`
	RefreshToken string `yaml:"refresh_token,omitempty" json:"refresh_token,omitempty"`
	AuthCode     string `yaml:"auth_code,omitempty" json:"auth_code,omitempty"`
	// ExpiresIn is the lifetime of issued access tokens in seconds; default 86400.
	ExpiresIn int64 `yaml:"expires_in,omitempty" json:"expires_in,omitempty"`
}

// User is an account user (a manager).
type User struct {
	ID    int64  `yaml:"id" json:"id"`
	Name  string `yaml:"name" json:"name"`
	Email string `yaml:"email,omitempty" json:"email,omitempty"`
	// Active defaults to true.
	Active *bool `yaml:"active,omitempty" json:"active,omitempty"`
}

// Contact is a person card. Phones go to the PHONE field and Emails to the EMAIL field as
// written; Fields are other text fields (name → value). The free-text query searches all.
type Contact struct {
	ID                int64             `yaml:"id" json:"id"`
	Name              string            `yaml:"name" json:"name"`
	ResponsibleUserID int64             `yaml:"responsible_user_id" json:"responsible_user_id"`
	Phones            []string          `yaml:"phones,omitempty" json:"phones,omitempty"`
	Emails            []string          `yaml:"emails,omitempty" json:"emails,omitempty"`
	Fields            map[string]string `yaml:"fields,omitempty" json:"fields,omitempty"`
	CompanyID         int64             `yaml:"company_id,omitempty" json:"company_id,omitempty"`
	LeadIDs           []int64           `yaml:"lead_ids,omitempty" json:"lead_ids,omitempty"`
	CreatedAt         int64             `yaml:"created_at,omitempty" json:"created_at,omitempty"`
	UpdatedAt         int64             `yaml:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// Company is an organisation card.
type Company struct {
	ID                int64  `yaml:"id" json:"id"`
	Name              string `yaml:"name" json:"name"`
	ResponsibleUserID int64  `yaml:"responsible_user_id" json:"responsible_user_id"`
	CreatedAt         int64  `yaml:"created_at,omitempty" json:"created_at,omitempty"`
	UpdatedAt         int64  `yaml:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// Lead is a deal; its contacts may be listed here, on the contacts, or both.
type Lead struct {
	ID                int64    `yaml:"id" json:"id"`
	Name              string   `yaml:"name" json:"name"`
	StatusID          int64    `yaml:"status_id" json:"status_id"`
	PipelineID        int64    `yaml:"pipeline_id" json:"pipeline_id"`
	ResponsibleUserID int64    `yaml:"responsible_user_id" json:"responsible_user_id"`
	ContactIDs        []int64  `yaml:"contact_ids,omitempty" json:"contact_ids,omitempty"`
	Tags              []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	CreatedAt         int64    `yaml:"created_at,omitempty" json:"created_at,omitempty"`
	UpdatedAt         int64    `yaml:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// Defaults of a Seed's settings.
const (
	DefaultToken     = "sandbox-token"
	DefaultRateLimit = 7
	DefaultAccountID = 29000001
	DefaultSubdomain = "sandbox"
	// DefaultPipelineID and DefaultStatusID are the main pipeline of the example seed.
	DefaultPipelineID = 5001
	DefaultStatusID   = 5101
)

// LoadSeed reads and validates a seed file (YAML, or JSON which is YAML too).
func LoadSeed(path string) (Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Seed{}, fmt.Errorf("sandbox: read seed: %w", err)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return Seed{}, fmt.Errorf("sandbox: seed %s: %w", path, err)
	}
	return s, nil
}

// ParseSeed decodes and validates a seed; an unknown key is an error.
func ParseSeed(data []byte) (Seed, error) {
	var s Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("decode: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Seed{}, err
	}
	return s, nil
}

// Validate reports the first inconsistency: duplicate or non-positive ids, links to
// entities that are not in the seed, an API user who is not a user, a webhook URL that is
// not http(s).
func (s Seed) Validate() error {
	users, err := ids("user", s.Users, func(u User) int64 { return u.ID })
	if err != nil {
		return err
	}
	if s.APIUserID < 0 || (s.APIUserID > 0 && !users[s.APIUserID]) {
		return fmt.Errorf("api_user_id %d is not in users", s.APIUserID)
	}
	if s.Pipeline.ID < 0 || s.Pipeline.StatusID < 0 {
		return errors.New("pipeline id and status_id must not be negative")
	}
	companies, err := ids("company", s.Companies, func(c Company) int64 { return c.ID })
	if err != nil {
		return err
	}
	contacts, err := ids("contact", s.Contacts, func(c Contact) int64 { return c.ID })
	if err != nil {
		return err
	}
	leads, err := ids("lead", s.Leads, func(l Lead) int64 { return l.ID })
	if err != nil {
		return err
	}
	for _, c := range s.Contacts {
		if c.CompanyID != 0 && !companies[c.CompanyID] {
			return fmt.Errorf("contact %d: company_id %d is not in companies", c.ID, c.CompanyID)
		}
		for _, l := range c.LeadIDs {
			if !leads[l] {
				return fmt.Errorf("contact %d: lead %d is not in leads", c.ID, l)
			}
		}
	}
	for _, l := range s.Leads {
		for _, c := range l.ContactIDs {
			if !contacts[c] {
				return fmt.Errorf("lead %d: contact %d is not in contacts", l.ID, c)
			}
		}
	}
	if s.WebhookURL != "" {
		if err := checkWebhookURL(s.WebhookURL); err != nil {
			return err
		}
	}
	return nil
}

func ids[T any](kind string, items []T, id func(T) int64) (map[int64]bool, error) {
	seen := make(map[int64]bool, len(items))
	for _, it := range items {
		n := id(it)
		if n <= 0 {
			return nil, fmt.Errorf("%s id %d: ids must be positive", kind, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("%s id %d appears twice", kind, n)
		}
		seen[n] = true
	}
	return seen, nil
}

func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook_url %q: want an http or https URL", raw)
	}
	return nil
}
