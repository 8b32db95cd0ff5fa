package sandbox

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// endpoint maps the methods a path answers to their handlers.
type endpoint map[string]http.HandlerFunc

// serveAPI routes an authorised /api/v4 request to its endpoint: 404 for a path the
// sandbox does not know, 405 with Allow for a method the path does not answer.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v4/"), "/"), "/")
	ep, problem := s.route(parts)
	if ep == nil {
		writeProblem(w, http.StatusNotFound, problem)
		return
	}
	h := ep[r.Method]
	if h == nil {
		allow := slices.Sorted(maps.Keys(ep))
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, http.StatusMethodNotAllowed, r.URL.Path+" answers "+strings.Join(allow, ", "))
		return
	}
	h(w, r)
}

// route finds the endpoint of a path split at its slashes; nil with the reason when none.
func (s *Server) route(parts []string) (endpoint, string) {
	const noEndpoint = "no such endpoint"
	entity := parts[0]
	switch {
	case len(parts) == 1:
		switch entity {
		case "contacts":
			return endpoint{"GET": s.list(s.getContacts), "POST": s.postContacts, "PATCH": s.patcher(entity)}, ""
		case "leads":
			return endpoint{"GET": s.list(s.getLeads), "POST": s.postLeads, "PATCH": s.patcher(entity)}, ""
		case "companies":
			return endpoint{"GET": s.list(s.getCompanies), "PATCH": s.patcher(entity)}, ""
		case "users":
			return endpoint{"GET": s.list(s.getUsers)}, ""
		case "tasks":
			return endpoint{"GET": s.getTasks, "POST": s.postTasks, "PATCH": s.patchTasks}, ""
		}
	case entity == "leads" && parts[1] == "unsorted":
		return s.unsortedRoute(parts[2:])
	case len(parts) == 2 && parts[1] == "notes" && noteEntities[entity]:
		return endpoint{"GET": s.notesHandler(entity, 0, s.getNotes), "POST": s.notesHandler(entity, 0, s.postNotes)}, ""
	case len(parts) == 2 || (len(parts) == 3 && parts[2] == "notes" && noteEntities[entity]):
		var one func(http.ResponseWriter, *http.Request, int64)
		switch entity {
		case "contacts":
			one = s.getContacts
		case "leads":
			one = s.getLeads
		case "companies":
			one = s.getCompanies
		case "users":
			one = s.getUsers
		case "tasks":
			one = s.getTask
		default:
			return nil, noEndpoint
		}
		id, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || id <= 0 {
			return nil, "no entity with id " + strconv.Quote(parts[1])
		}
		if len(parts) == 3 {
			return endpoint{"GET": s.notesHandler(entity, id, s.getNotes), "POST": s.notesHandler(entity, id, s.postNotes)}, ""
		}
		return endpoint{"GET": func(w http.ResponseWriter, r *http.Request) { one(w, r, id) }}, ""
	}
	return nil, noEndpoint
}

// list adapts a handler of lists and single entities to a list endpoint.
func (s *Server) list(h func(http.ResponseWriter, *http.Request, int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, 0) }
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
