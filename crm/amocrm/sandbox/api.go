package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

// serveAPI routes an authorised /api/v4 request to its endpoint.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v4/"), "/"), "/")
	if len(parts) > 2 {
		writeProblem(w, http.StatusNotFound, "no such endpoint")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeProblem(w, http.StatusMethodNotAllowed, "the sandbox serves "+r.Method+" "+r.URL.Path+" in a later version")
		return
	}
	var id int64
	if len(parts) == 2 {
		n, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || n <= 0 {
			writeProblem(w, http.StatusNotFound, "no entity with id "+strconv.Quote(parts[1]))
			return
		}
		id = n
	}
	var h func(http.ResponseWriter, *http.Request, int64)
	switch parts[0] {
	case "contacts":
		h = s.getContacts
	case "leads":
		h = s.getLeads
	case "companies":
		h = s.getCompanies
	case "users":
		h = s.getUsers
	default:
		writeProblem(w, http.StatusNotFound, "no such endpoint")
		return
	}
	h(w, r, id)
}

// getContacts serves /api/v4/contacts (query, filter[id], with=leads) and /contacts/{id}.
func (s *Server) getContacts(w http.ResponseWriter, r *http.Request, id int64) {
	p, field, msg := parseList(r.URL.Query())
	if field != "" {
		writeInvalid(w, field, msg)
		return
	}
	s.mu.Lock()
	rn := s.renderer(r)
	withLeads := p.with["leads"]
	if id != 0 {
		c := s.st.contacts[id]
		var one contactJSON
		if c != nil {
			one = rn.contact(c, withLeads)
		}
		s.mu.Unlock()
		writeOne(w, c != nil, one)
		return
	}
	var all []contactJSON
	for _, cid := range sortedIDs(s.st.contacts) {
		c := s.st.contacts[cid]
		if (p.ids == nil || p.ids[cid]) && (p.query.empty() || p.query.contact(c)) {
			all = append(all, rn.contact(c, withLeads))
		}
	}
	s.mu.Unlock()
	writePage(w, r, rn, "contacts", all, p.paging)
}

// getLeads serves /api/v4/leads (query on the name, filter[id], with=contacts) and /leads/{id}.
func (s *Server) getLeads(w http.ResponseWriter, r *http.Request, id int64) {
	p, field, msg := parseList(r.URL.Query())
	if field != "" {
		writeInvalid(w, field, msg)
		return
	}
	s.mu.Lock()
	rn := s.renderer(r)
	withContacts := p.with["contacts"]
	if id != 0 {
		l := s.st.leads[id]
		var one leadJSON
		if l != nil {
			one = rn.lead(l, withContacts)
		}
		s.mu.Unlock()
		writeOne(w, l != nil, one)
		return
	}
	var all []leadJSON
	for _, lid := range sortedIDs(s.st.leads) {
		l := s.st.leads[lid]
		if (p.ids == nil || p.ids[lid]) && (p.query.empty() || p.query.matches(l.Name)) {
			all = append(all, rn.lead(l, withContacts))
		}
	}
	s.mu.Unlock()
	writePage(w, r, rn, "leads", all, p.paging)
}

// getCompanies serves /api/v4/companies (query on the name, filter[id]) and /companies/{id}.
func (s *Server) getCompanies(w http.ResponseWriter, r *http.Request, id int64) {
	p, field, msg := parseList(r.URL.Query())
	if field != "" {
		writeInvalid(w, field, msg)
		return
	}
	s.mu.Lock()
	rn := s.renderer(r)
	if id != 0 {
		c := s.st.companies[id]
		var one companyJSON
		if c != nil {
			one = rn.company(c)
		}
		s.mu.Unlock()
		writeOne(w, c != nil, one)
		return
	}
	var all []companyJSON
	for _, cid := range sortedIDs(s.st.companies) {
		c := s.st.companies[cid]
		if (p.ids == nil || p.ids[cid]) && (p.query.empty() || p.query.matches(c.Name)) {
			all = append(all, rn.company(c))
		}
	}
	s.mu.Unlock()
	writePage(w, r, rn, "companies", all, p.paging)
}

// getUsers serves /api/v4/users and /users/{id}.
func (s *Server) getUsers(w http.ResponseWriter, r *http.Request, id int64) {
	p, field, msg := parseList(r.URL.Query())
	if field != "" {
		writeInvalid(w, field, msg)
		return
	}
	s.mu.Lock()
	rn := s.renderer(r)
	if id != 0 {
		u := s.st.users[id]
		var one userJSON
		if u != nil {
			one = rn.user(u)
		}
		s.mu.Unlock()
		writeOne(w, u != nil, one)
		return
	}
	var all []userJSON
	for _, uid := range sortedIDs(s.st.users) {
		if p.ids == nil || p.ids[uid] {
			all = append(all, rn.user(s.st.users[uid]))
		}
	}
	s.mu.Unlock()
	writePage(w, r, rn, "users", all, p.paging)
}

func writeOne[T any](w http.ResponseWriter, found bool, v T) {
	if !found {
		writeProblem(w, http.StatusNotFound, "entity not found")
		return
	}
	writeHAL(w, v)
}
