package sandbox

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// endpoint maps the methods a path answers to their handlers.
type endpoint map[string]http.HandlerFunc

// serveAPI routes an authorised /api/v4 request to its endpoint: 404 for a path the
// sandbox does not know, 405 with Allow for a method the path does not answer.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if isCallEvents(r.URL.Path) {
		s.serveEndpoint(w, r, endpoint{"POST": s.postCallEvents})
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v4/"), "/"), "/")
	ep, problem := s.route(parts)
	if ep == nil {
		writeProblem(w, http.StatusNotFound, problem)
		return
	}
	s.serveEndpoint(w, r, ep)
}

// serveEndpoint runs the handler of the request's method: 405 with Allow when the path
// does not answer it.
func (s *Server) serveEndpoint(w http.ResponseWriter, r *http.Request, ep endpoint) {
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
	if _, p, ok := listQuery(w, r); ok {
		serveList(s, w, r, p, id, "contacts", func(st *store) map[int64]*Contact { return st.contacts },
			func(c *Contact) bool { return p.query.empty() || p.query.contact(c) },
			func(rn renderer, c *Contact) contactJSON { return rn.contact(c, p.with["leads"]) })
	}
}

// getLeads serves /api/v4/leads (query on the name, filter[id], with=contacts) and /leads/{id}.
func (s *Server) getLeads(w http.ResponseWriter, r *http.Request, id int64) {
	if _, p, ok := listQuery(w, r); ok {
		serveList(s, w, r, p, id, "leads", func(st *store) map[int64]*Lead { return st.leads },
			func(l *Lead) bool { return p.query.empty() || p.query.matches(l.Name) },
			func(rn renderer, l *Lead) leadJSON { return rn.lead(l, p.with["contacts"]) })
	}
}

// getCompanies serves /api/v4/companies (query on the name, filter[id], with=contacts) and
// /companies/{id}.
func (s *Server) getCompanies(w http.ResponseWriter, r *http.Request, id int64) {
	if _, p, ok := listQuery(w, r); ok {
		serveList(s, w, r, p, id, "companies", func(st *store) map[int64]*Company { return st.companies },
			func(c *Company) bool { return p.query.empty() || p.query.matches(c.Name) },
			func(rn renderer, c *Company) companyJSON {
				return rn.company(c, s.companyContacts(c.ID, p.with["contacts"]))
			})
	}
}

// getUsers serves /api/v4/users and /users/{id}.
func (s *Server) getUsers(w http.ResponseWriter, r *http.Request, id int64) {
	if _, p, ok := listQuery(w, r); ok {
		serveList(s, w, r, p, id, "users", func(st *store) map[int64]*User { return st.users }, nil, renderer.user)
	}
}

// listQuery reads the query of a list request and the parameters every list endpoint
// understands (see parseList); on a bad one it answers 400 and ok is false.
func listQuery(w http.ResponseWriter, r *http.Request) (q url.Values, p listParams, ok bool) {
	q = r.URL.Query()
	p, field, msg := parseList(q)
	if field != "" {
		writeInvalid(w, field, msg)
		return q, p, false
	}
	return q, p, true
}

// serveList answers a list endpoint over one collection of the store (all picks it) and,
// when id is not 0, its /{id} form: the entity with that id (404 when none), or the page
// of the entities that pass filter[id] and match (nil: every one), in id order, under
// key. render builds an entity's payload; all, match and render run with s.mu held.
func serveList[E, J any](s *Server, w http.ResponseWriter, r *http.Request, p listParams, id int64, key string,
	all func(*store) map[int64]*E, match func(*E) bool, render func(renderer, *E) J) {
	s.mu.Lock()
	rn := s.renderer(r)
	m := all(s.st)
	if id != 0 {
		e := m[id]
		var one J
		if e != nil {
			one = render(rn, e)
		}
		s.mu.Unlock()
		writeOne(w, e != nil, one)
		return
	}
	var page []J
	for _, eid := range sortedIDs(m) {
		e := m[eid]
		if (p.ids == nil || p.ids[eid]) && (match == nil || match(e)) {
			page = append(page, render(rn, e))
		}
	}
	s.mu.Unlock()
	writePage(w, r, rn, key, page, p.paging)
}

// writeOne answers GET of one entity: v, or 404 when it was not found.
func writeOne[T any](w http.ResponseWriter, found bool, v T) {
	if !found {
		writeProblem(w, http.StatusNotFound, "entity not found")
		return
	}
	writeHAL(w, v)
}

// companyContacts lists the contacts that belong to a company, for with=contacts; nil
// when not asked for. Callers hold s.mu.
func (s *Server) companyContacts(companyID int64, asked bool) []int64 {
	if !asked {
		return nil
	}
	ids := []int64{}
	for _, cid := range sortedIDs(s.st.contacts) {
		if s.st.contacts[cid].CompanyID == companyID {
			ids = append(ids, cid)
		}
	}
	return ids
}
