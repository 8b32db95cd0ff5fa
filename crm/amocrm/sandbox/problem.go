package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an application/problem+json body as amoCRM sends it.
type problem struct {
	Type             string            `json:"type"`
	Title            string            `json:"title"`
	Status           int               `json:"status"`
	Detail           string            `json:"detail,omitempty"`
	ValidationErrors []validationError `json:"validation-errors,omitempty"`
}

type validationError struct {
	RequestID string            `json:"request_id"`
	Errors    []validationIssue `json:"errors"`
}

type validationIssue struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	writeProblemBody(w, problem{Status: status, Detail: detail})
}

// writeInvalid answers 400 "Request validation failed" naming the offending parameter.
func writeInvalid(w http.ResponseWriter, path, detail string) {
	writeProblemBody(w, problem{
		Status: http.StatusBadRequest,
		Detail: "Request validation failed",
		ValidationErrors: []validationError{{RequestID: "0", Errors: []validationIssue{{
			Code: "InvalidParameter", Path: path, Detail: detail,
		}}}},
	})
}

func writeProblemBody(w http.ResponseWriter, p problem) {
	p.Type = "https://httpstatus.es/" + strconv.Itoa(p.Status)
	p.Title = http.StatusText(p.Status)
	if p.Title == "" {
		p.Title = "Error"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeHAL(w http.ResponseWriter, v any) { writeJSON(w, "application/hal+json", http.StatusOK, v) }
