package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ariClient reads the rig's Asterisk over ARI: is it up, is crmlink's application
// registered, is a phone online, what variables does a caller's channel carry.
type ariClient struct {
	base, user, pass string
	http             *http.Client
}

func newARIClient() ariClient {
	return ariClient{base: "http://127.0.0.1:8088/ari", user: "crmlink", pass: "crmlink", http: &http.Client{Timeout: 2 * time.Second}}
}

var errNoSuch = errors.New("not found")

func (a ariClient) get(path string, out any) error {
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNoSuch
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("ARI GET %s: status %d", path, resp.StatusCode)
	case out == nil:
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a ariClient) ping() error { return a.get("/asterisk/ping", nil) }

func (a ariClient) appRegistered(app string) bool { return a.get("/applications/"+app, nil) == nil }

func (a ariClient) endpointState(resource string) string {
	var ep struct {
		State string `json:"state"`
	}
	if err := a.get("/endpoints/PJSIP/"+resource, &ep); err != nil {
		return "error: " + err.Error()
	}
	return ep.State
}

// callerVars reads variables of the incoming channel whose caller number is num (not a
// leg crmlink originated towards a manager).
func (a ariClient) callerVars(num string, names ...string) (map[string]string, error) {
	var chans []struct {
		ID     string `json:"id"`
		Caller struct {
			Number string `json:"number"`
		} `json:"caller"`
	}
	if err := a.get("/channels", &chans); err != nil {
		return nil, err
	}
	for _, ch := range chans {
		if ch.Caller.Number != num || strings.HasPrefix(ch.ID, "crmlink-leg-") {
			continue
		}
		out := map[string]string{}
		for _, n := range names {
			var v struct {
				Value string `json:"value"`
			}
			err := a.get("/channels/"+url.PathEscape(ch.ID)+"/variable?variable="+url.QueryEscape(n), &v)
			if err != nil && !errors.Is(err, errNoSuch) {
				return nil, err
			}
			out[n] = v.Value
		}
		return out, nil
	}
	return nil, fmt.Errorf("no channel with caller %s", num)
}
