package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// restClient makes the few read-only ARI requests the controller needs with a context and
// a deadline (the ARI library's REST calls take neither): endpoint state for presence,
// the channel list for reconciling, the application for health.
type restClient struct {
	base       string
	user, pass string
	http       *http.Client
}

func newRESTClient(base, user, pass string, timeout time.Duration) *restClient {
	return &restClient{
		base: strings.TrimSuffix(base, "/"),
		user: user, pass: pass,
		http: &http.Client{Timeout: timeout},
	}
}

// errNotFound is a 404 from ARI.
var errNotFound = fmt.Errorf("ARI: not found")

func (r *restClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return fmt.Errorf("ARI GET %s: %w", path, err)
	}
	req.SetBasicAuth(r.user, r.pass)
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("ARI GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, resp.Body)
		return errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("ARI GET %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("ARI GET %s: decode: %w", path, err)
	}
	return nil
}

// endpointState is "online", "offline" or "unknown".
func (r *restClient) endpointState(ctx context.Context, tech, resource string) (string, error) {
	var ep struct {
		State string `json:"state"`
	}
	if err := r.get(ctx, "/endpoints/"+url.PathEscape(tech)+"/"+url.PathEscape(resource), &ep); err != nil {
		return "", err
	}
	return ep.State, nil
}

func (r *restClient) applicationRegistered(ctx context.Context, app string) (bool, error) {
	var a struct {
		Name string `json:"name"`
	}
	err := r.get(ctx, "/applications/"+url.PathEscape(app), &a)
	if err == errNotFound {
		return false, nil
	}
	return err == nil, err
}

// channelsInApp lists the channels sitting in Stasis(app) as the dialplan put them there.
func (r *restClient) channelsInApp(ctx context.Context, app string) ([]ari.ChannelData, error) {
	var all []ari.ChannelData
	if err := r.get(ctx, "/channels", &all); err != nil {
		return nil, err
	}
	var out []ari.ChannelData
	for _, ch := range all {
		if ch.Dialplan == nil || ch.Dialplan.AppName != "Stasis" {
			continue
		}
		name, _, _ := strings.Cut(ch.Dialplan.AppData, ",")
		if strings.TrimSpace(name) == app {
			out = append(out, ch)
		}
	}
	return out, nil
}

// bridgeInfo is what the reconciler needs of a bridge.
type bridgeInfo struct {
	ID       string   `json:"id"`
	Channels []string `json:"channels"`
}

func (r *restClient) bridges(ctx context.Context) ([]bridgeInfo, error) {
	var out []bridgeInfo
	err := r.get(ctx, "/bridges", &out)
	return out, err
}

// filterEvents asks Asterisk to send the application only these event types (ARI's
// PUT /applications/{app}/eventFilter): less to send, decode and drop under load.
func (r *restClient) filterEvents(ctx context.Context, app string, types []string) error {
	type typ struct {
		Type string `json:"type"`
	}
	body := struct {
		Allowed []typ `json:"allowed"`
	}{}
	for _, t := range types {
		body.Allowed = append(body.Allowed, typ{t})
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.base+"/applications/"+url.PathEscape(app)+"/eventFilter", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.SetBasicAuth(r.user, r.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("ARI PUT eventFilter: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ARI PUT eventFilter: status %d", resp.StatusCode)
	}
	return nil
}
