package sandbox

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// taskEntities are the entity types a task can be on.
var taskEntities = map[string]bool{"leads": true, "contacts": true, "companies": true}

// defaultTaskType is amoCRM's "follow-up" (call) task type.
const defaultTaskType = 1

type taskIn struct {
	Text              string `json:"text"`
	CompleteTill      int64  `json:"complete_till"`
	TaskTypeID        int64  `json:"task_type_id"`
	ResponsibleUserID int64  `json:"responsible_user_id"`
	CreatedBy         int64  `json:"created_by"`
	EntityType        string `json:"entity_type"`
	EntityID          int64  `json:"entity_id"`
	Duration          int64  `json:"duration"`
}

// taskFrom checks a posted task and builds it without id and times; s.mu is held.
func (s *Server) taskFrom(reqID string, in taskIn, v *invalid) Task {
	t := Task{
		Text: strings.TrimSpace(in.Text), CompleteTill: in.CompleteTill, TaskTypeID: in.TaskTypeID,
		ResponsibleUserID: s.orAPIUser(in.ResponsibleUserID), EntityType: in.EntityType, EntityID: in.EntityID,
		Duration: in.Duration, RequestID: reqID, CreatedBy: s.orAPIUser(in.CreatedBy),
	}
	if t.Text == "" {
		v.add(reqID, codeNotBlank, "text", detailNotBlank)
	}
	if in.CompleteTill <= 0 {
		v.add(reqID, codeNotBlank, "complete_till", detailNotBlank)
	}
	if t.TaskTypeID == 0 {
		t.TaskTypeID = defaultTaskType
	}
	if t.TaskTypeID < 0 {
		v.add(reqID, codeChoice, "task_type_id", detailChoice)
	}
	if in.Duration < 0 {
		v.add(reqID, codeChoice, "duration", detailNegative)
	}
	s.checkUser(v, reqID, "responsible_user_id", in.ResponsibleUserID)
	s.checkUser(v, reqID, "created_by", in.CreatedBy)
	switch {
	case in.EntityType == "" && in.EntityID == 0:
	case !taskEntities[in.EntityType]:
		v.add(reqID, codeChoice, "entity_type", detailChoice)
	case in.EntityID <= 0:
		v.add(reqID, codeNotBlank, "entity_id", detailNotBlank)
	case !s.st.entityExists(in.EntityType, in.EntityID):
		v.add(reqID, codeNotFound, "entity_id", detailNotFound)
	}
	return t
}

// postTasks serves POST /api/v4/tasks.
func (s *Server) postTasks(w http.ResponseWriter, r *http.Request) {
	rn, out, ok := applyItems(s, w, r, s.taskFrom, func(rn renderer, t Task, _ string, now int64) createdRef {
		t.ID, t.CreatedAt, t.UpdatedAt = s.st.nextID(), now, now
		s.st.tasks[t.ID] = &t
		s.st.created.tasks = append(s.st.created.tasks, t.ID)
		return createdRef{ID: t.ID, RequestID: t.RequestID, Links: rn.self("/api/v4/tasks", t.ID)}
	})
	if ok {
		rn.writeCreated(w, r, "tasks", out)
	}
}

type taskJSON struct {
	ID                int64   `json:"id"`
	CreatedBy         int64   `json:"created_by"`
	UpdatedBy         int64   `json:"updated_by"`
	CreatedAt         int64   `json:"created_at"`
	UpdatedAt         int64   `json:"updated_at"`
	ResponsibleUserID int64   `json:"responsible_user_id"`
	GroupID           int64   `json:"group_id"`
	EntityID          *int64  `json:"entity_id"`
	EntityType        *string `json:"entity_type"`
	Duration          int64   `json:"duration"`
	IsCompleted       bool    `json:"is_completed"`
	TaskTypeID        int64   `json:"task_type_id"`
	Text              string  `json:"text"`
	// Result is [] until the task is completed with a text, then {"text": ...}.
	Result       any   `json:"result"`
	CompleteTill int64 `json:"complete_till"`
	AccountID    int64 `json:"account_id"`
	Links        links `json:"_links"`
}

func (rn renderer) task(t *Task) taskJSON {
	j := taskJSON{
		ID: t.ID, CreatedBy: t.CreatedBy, UpdatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		ResponsibleUserID: t.ResponsibleUserID, Duration: t.Duration, IsCompleted: t.IsCompleted,
		TaskTypeID: t.TaskTypeID, Text: t.Text, Result: []any{}, CompleteTill: t.CompleteTill,
		AccountID: rn.accountID, Links: rn.self("/api/v4/tasks", t.ID),
	}
	if t.EntityType != "" {
		et, id := t.EntityType, t.EntityID
		j.EntityType, j.EntityID = &et, &id
	}
	if t.Result != "" {
		j.Result = map[string]string{"text": t.Result}
	}
	return j
}

// getTasks serves GET /api/v4/tasks with filter[id], filter[entity_type],
// filter[entity_id], filter[is_completed] (0 or 1), filter[task_type] and
// filter[responsible_user_id], in id order.
func (s *Server) getTasks(w http.ResponseWriter, r *http.Request) {
	q, p, ok := listQuery(w, r)
	if !ok {
		return
	}
	entityIDs, ok1 := intFilter(q, "entity_id")
	types, ok2 := intFilter(q, "task_type")
	users, ok3 := intFilter(q, "responsible_user_id")
	done, ok4 := intFilter(q, "is_completed")
	for i, name := range []string{"entity_id", "task_type", "responsible_user_id"} {
		if ![]bool{ok1, ok2, ok3}[i] {
			writeInvalid(w, "filter."+name, name+" must be integers")
			return
		}
	}
	if !ok4 || len(done) > 1 || (done != nil && !done[0] && !done[1]) {
		writeInvalid(w, "filter.is_completed", "is_completed must be 0 or 1")
		return
	}
	entityTypes := stringFilter(q, "entity_type")
	for et := range entityTypes {
		if !taskEntities[et] {
			writeInvalid(w, "filter.entity_type", "entity_type must be leads, contacts or companies")
			return
		}
	}
	serveList(s, w, r, p, 0, "tasks", tasksOf,
		func(t *Task) bool {
			return (entityTypes == nil || entityTypes[t.EntityType]) && (entityIDs == nil || entityIDs[t.EntityID]) &&
				(types == nil || types[t.TaskTypeID]) && (users == nil || users[t.ResponsibleUserID]) &&
				(done == nil || done[1] == t.IsCompleted)
		}, renderer.task)
}

// tasksOf picks a store's tasks, for serveList.
func tasksOf(st *store) map[int64]*Task { return st.tasks }

// getTask serves GET /api/v4/tasks/{id}.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request, id int64) {
	serveList(s, w, r, listParams{}, id, "tasks", tasksOf, nil, renderer.task)
}

type taskPatchIn struct {
	ID                int64   `json:"id"`
	Text              *string `json:"text"`
	CompleteTill      *int64  `json:"complete_till"`
	ResponsibleUserID *int64  `json:"responsible_user_id"`
	IsCompleted       *bool   `json:"is_completed"`
	Result            *struct {
		Text string `json:"text"`
	} `json:"result"`
}

// patchTasks serves PATCH /api/v4/tasks: text, complete_till, responsible_user_id, and
// is_completed with an optional result text.
func (s *Server) patchTasks(w http.ResponseWriter, r *http.Request) {
	rn, out, ok := applyItems(s, w, r, func(reqID string, in taskPatchIn, v *invalid) taskPatchIn {
		switch {
		case in.ID <= 0:
			v.add(reqID, codeNotBlank, "id", detailNotBlank)
		case s.st.tasks[in.ID] == nil:
			v.add(reqID, codeNotFound, "id", detailNotFound)
		}
		if in.Text != nil && strings.TrimSpace(*in.Text) == "" {
			v.add(reqID, codeNotBlank, "text", detailNotBlank)
		}
		if in.CompleteTill != nil && *in.CompleteTill <= 0 {
			v.add(reqID, codeNotBlank, "complete_till", detailNotBlank)
		}
		if in.ResponsibleUserID != nil {
			if *in.ResponsibleUserID == 0 {
				v.add(reqID, codeChoice, "responsible_user_id", detailChoice)
			}
			s.checkUser(v, reqID, "responsible_user_id", *in.ResponsibleUserID)
		}
		return in
	}, func(rn renderer, in taskPatchIn, reqID string, now int64) updatedRef {
		t := s.st.tasks[in.ID]
		if in.Text != nil {
			t.Text = strings.TrimSpace(*in.Text)
		}
		if in.CompleteTill != nil {
			t.CompleteTill = *in.CompleteTill
		}
		if in.ResponsibleUserID != nil {
			t.ResponsibleUserID = *in.ResponsibleUserID
		}
		if in.IsCompleted != nil {
			t.IsCompleted = *in.IsCompleted
		}
		if in.Result != nil {
			t.Result = in.Result.Text
		}
		t.UpdatedAt = now
		return updatedRef{ID: t.ID, UpdatedAt: now, RequestID: reqID, Links: rn.self("/api/v4/tasks", t.ID)}
	})
	if ok {
		rn.writeCreated(w, r, "tasks", out)
	}
}

// CompleteTask marks a task done with a result text, as a manager closing it would.
func (s *Server) CompleteTask(id int64, result string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.tasks[id]
	if t == nil {
		return fmt.Errorf("%w: task %s", ErrNotFound, strconv.FormatInt(id, 10))
	}
	t.IsCompleted, t.Result, t.UpdatedAt = true, result, s.now().Unix()
	return nil
}
