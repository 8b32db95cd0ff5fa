package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The benchmark's amoCRM account. Two managers, mapped in crmlink to the bench-mgr1 and
// bench-mgr2 endpoints; three sets of callers, each number written on one contact card.
const (
	manager1 = 1001 // PJSIP/bench-mgr1
	manager2 = 1002 // PJSIP/bench-mgr2
	crmToken = "bench-token"
	// hookSecret is the last segment of crmlink's webhook URL.
	hookSecret = "bench-hook"

	warmNumbers = 10 // callers of the cached and indexed paths
)

// Caller numbers as the trunk sends them (digits, national prefix 7): fixed length, so the
// CRM's substring search never finds one number inside another.
func cachedNumber(i int) string  { return fmt.Sprintf("7495300%04d", i+1) }
func indexedNumber(i int) string { return fmt.Sprintf("7495301%04d", i+1) }
func coldNumber(i int) string    { return fmt.Sprintf("749540%05d", i+1) }

func numbers(n int, f func(int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// cardPhone spells a number the way people type it on a card: +7 (495) 300-00-01.
func cardPhone(n string) string {
	return fmt.Sprintf("+7 (%s) %s-%s-%s", n[1:4], n[4:7], n[7:9], n[9:11])
}

// Seed types: the keys of the sandbox's seed format (crm/amocrm/sandbox/seed.go).
type seedUser struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type seedContact struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Responsible int64    `json:"responsible_user_id"`
	Phones      []string `json:"phones"`
	LeadIDs     []int64  `json:"lead_ids,omitempty"`
}

type seedLead struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	StatusID    int64  `json:"status_id"`
	PipelineID  int64  `json:"pipeline_id"`
	Responsible int64  `json:"responsible_user_id"`
}

type seed struct {
	Token     string        `json:"token"`
	RateLimit int           `json:"rate_limit"`
	Users     []seedUser    `json:"users"`
	Contacts  []seedContact `json:"contacts"`
	Leads     []seedLead    `json:"leads"`
}

// Contact ids of the caller sets.
func cachedContact(i int) int64  { return int64(1 + i) }
func indexedContact(i int) int64 { return int64(101 + i) }
func coldContact(i int) int64    { return int64(10001 + i) }

// benchSeed is the account: cached and cold callers have an open deal of manager 1 (a
// live lookup reads the contact and then its deal: two requests), indexed callers only a
// contact of manager 1 (one request), which a webhook later gives to manager 2.
func benchSeed(cold int) seed {
	s := seed{
		Token:     crmToken,
		RateLimit: 7,
		Users:     []seedUser{{ID: manager1, Name: "Bench manager 1"}, {ID: manager2, Name: "Bench manager 2"}},
	}
	withDeal := func(id int64, name, number string, leadID int64) {
		s.Contacts = append(s.Contacts, seedContact{ID: id, Name: name, Responsible: manager1, Phones: []string{cardPhone(number)}, LeadIDs: []int64{leadID}})
		s.Leads = append(s.Leads, seedLead{ID: leadID, Name: "Deal of " + name, StatusID: 5101, PipelineID: 5001, Responsible: manager1})
	}
	for i := range warmNumbers {
		withDeal(cachedContact(i), "Cached client "+strconv.Itoa(i+1), cachedNumber(i), 50001+int64(i))
	}
	for i := range warmNumbers {
		s.Contacts = append(s.Contacts, seedContact{ID: indexedContact(i), Name: "Indexed client " + strconv.Itoa(i+1), Responsible: manager1, Phones: []string{cardPhone(indexedNumber(i))}})
	}
	for i := range cold {
		withDeal(coldContact(i), "Cold client "+strconv.Itoa(i+1), coldNumber(i), 60001+int64(i))
	}
	return s
}

// Sandbox is the amocrm-sandbox process.
type Sandbox struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	http *http.Client
}

// StartSandbox runs bin/amocrm-sandbox with the seed on a free loopback port.
func StartSandbox(bin, dir string, s seed) (*Sandbox, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	seedPath := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedPath, data, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "amocrm-sandbox.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:"+strconv.Itoa(port), "--seed", seedPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("amocrm-sandbox: %w", err)
	}
	sb := &Sandbox{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, done: make(chan struct{}), http: &http.Client{Timeout: 10 * time.Second}}
	go func() { _ = cmd.Wait(); logf.Close(); close(sb.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := sb.Requests(context.Background()); err == nil {
			return sb, nil
		}
		select {
		case <-sb.done:
			return nil, fmt.Errorf("amocrm-sandbox exited: %s", tail(logf.Name(), 5))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sb.Stop()
			return nil, fmt.Errorf("amocrm-sandbox did not answer on %s within 15 s", sb.URL)
		}
	}
}

// Pid is the sandbox process id.
func (s *Sandbox) Pid() int { return s.cmd.Process.Pid }

// Stop ends the sandbox.
func (s *Sandbox) Stop() {
	if s != nil {
		stopProcess(s.cmd.Process, s.done, 5*time.Second)
	}
}

func (s *Sandbox) control(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox %s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// SetLatency makes every API request take ms longer.
func (s *Sandbox) SetLatency(ctx context.Context, ms int) error {
	return s.control(ctx, http.MethodPost, "/_sandbox/latency", map[string]int{"ms": ms}, nil)
}

// SetRateLimit sets the requests per sliding second before 429.
func (s *Sandbox) SetRateLimit(ctx context.Context, n int) error {
	return s.control(ctx, http.MethodPost, "/_sandbox/rate-limit", map[string]int{"per_second": n}, nil)
}

// SetWebhook points the responsible-change webhooks at url.
func (s *Sandbox) SetWebhook(ctx context.Context, url string) error {
	return s.control(ctx, http.MethodPost, "/_sandbox/webhook", map[string]string{"url": url}, nil)
}

// GiveContact makes user responsible for the contact, as a manager would in amoCRM; the
// sandbox posts the webhook and returns once crmlink answered it, with crmlink's status.
func (s *Sandbox) GiveContact(ctx context.Context, contact, user int64) (int, error) {
	var res struct {
		Webhook *struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"webhook"`
	}
	err := s.control(ctx, http.MethodPost, "/_sandbox/responsible", map[string]any{
		"entity": "contact", "id": contact, "responsible_user_id": user, "modified_user_id": manager1,
	}, &res)
	if err != nil {
		return 0, err
	}
	if res.Webhook == nil {
		return 0, fmt.Errorf("sandbox sent no webhook for contact %d (no webhook URL set)", contact)
	}
	if res.Webhook.Error != "" {
		return res.Webhook.Status, fmt.Errorf("webhook for contact %d: %s", contact, res.Webhook.Error)
	}
	return res.Webhook.Status, nil
}

// ResetCounters forgets the API request counts.
func (s *Sandbox) ResetCounters(ctx context.Context) error {
	return s.control(ctx, http.MethodPost, "/_sandbox/reset-counters", nil, nil)
}

// Requests returns the API request counts by "METHOD /path".
func (s *Sandbox) Requests(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := s.control(ctx, http.MethodGet, "/_sandbox/requests", nil, &out)
	return out, err
}
