package sandbox

// Requests counts the API requests received (whatever their answer) for a key: either
// "GET /api/v4/contacts" (method and path, no query) or "/api/v4/contacts" (any method).
func (s *Server) Requests(key string) int { return s.requests.Requests(key) }

// RequestCounts returns every count by "METHOD /path".
func (s *Server) RequestCounts() map[string]int { return s.requests.All() }

// ResetCounters forgets the request counts.
func (s *Server) ResetCounters() {
	s.rateLimited.Store(0)
	s.requests.Reset()
}

// Created returns what clients created through the API since the start or the last
// Reseed, in order, each as it is now.
func (s *Server) Created() Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.createdNow()
}

// State returns the account's current data and settings as a seed; the OAuth grants are
// left out.
func (s *Server) State() Seed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.st.snapshot()
	out.Token, out.RateLimit, out.WebhookURL, out.Account = s.settings.Token, s.settings.RateLimit, s.settings.WebhookURL, s.settings.Account
	out.APIUserID, out.Pipeline = s.settings.APIUserID, s.settings.Pipeline
	return out
}

// Reseed validates seed and replaces all data with it (what was created through the API
// too), and the settings the seed sets (token, rate limit, webhook URL, account, API user,
// pipeline, OAuth); settings it leaves empty stay as they are.
func (s *Server) Reseed(seed Seed) error {
	if err := seed.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = newStore(seed, s.now())
	if seed.Token != "" {
		s.settings.Token = seed.Token
	}
	if seed.RateLimit != 0 {
		s.settings.RateLimit = seed.RateLimit
	}
	if seed.WebhookURL != "" {
		s.settings.WebhookURL = seed.WebhookURL
	}
	if seed.Account.ID != 0 {
		s.settings.Account.ID = seed.Account.ID
	}
	if seed.Account.Subdomain != "" {
		s.settings.Account.Subdomain = seed.Account.Subdomain
	}
	if seed.APIUserID != 0 {
		s.settings.APIUserID = seed.APIUserID
	}
	if seed.Pipeline.ID != 0 {
		s.settings.Pipeline.ID = seed.Pipeline.ID
	}
	if seed.Pipeline.StatusID != 0 {
		s.settings.Pipeline.StatusID = seed.Pipeline.StatusID
	}
	if seed.OAuth != nil {
		s.settings.OAuth = seed.OAuth
		s.oauth = newOAuthState(seed.OAuth)
	}
	return nil
}

// FieldID returns the id the account gives its own text field of that name (one a seed
// contact fills, such as an INN), for a client that writes or searches by field id.
func (s *Server) FieldID(name string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.st.fieldIDs[name]
	return id, ok
}
