package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// demoKeySecret is the demo's click_to_call.key_secret; annaCallerID the number Anna's
// clients see when crmlink calls them for her.
const (
	demoKeySecret = "demo-click-to-call-secret-change-me-0123456789"
	annaCallerID  = "+74950000101"
)

// clickToCallScenario is Anna clicking Irina's number in amoCRM (the widget's request,
// with Anna's own key): Anna's phone rings, she answers, Irina's line rings with Anna's
// caller id, they talk, and the call is logged as Anna's outgoing call.
func clickToCallScenario() scenario {
	return scenario{
		title: "click-to-call from amoCRM", number: "+7 495 100-00-01", caller: "Anna clicks Irina's number",
		expect: "101 rings, then Irina; call_out note",
		call: func(ctx context.Context, d *demo, r *row) error {
			pstn, err := siptest.NewPhone(context.Background(), siptest.PhoneOptions{User: "pstn", BindHost: "127.0.0.2", BindPort: 5060})
			if err != nil {
				return fmt.Errorf("the client's line on the trunk (127.0.0.2:5060): %w", err)
			}
			defer pstn.Close()
			id, err := d.click(clicktocall.Key(demoKeySecret, 1001), 1001, "+7 495 100-00-01")
			if err != nil {
				return err
			}
			d.say("POST /v1/calls with Anna's key (crmlink widget-key 1001): 202, call %s", id)
			anna, err := d.ring(ctx, "101", ringWait)
			if err != nil {
				return err
			}
			actx, cancel := context.WithTimeout(ctx, ringWait)
			defer cancel()
			if err := anna.Answer(actx); err != nil {
				return fmt.Errorf("Anna answering: %w", err)
			}
			r.rang = append(r.rang, "101 Anna: answered")
			var client *siptest.IncomingCall
			select {
			case client = <-pstn.Incoming():
			case <-time.After(ringWait):
				return fmt.Errorf("the client's line did not ring within %s", ringWait)
			}
			_ = client.Ringing()
			r.rang = append(r.rang, fmt.Sprintf("Irina %s: answered", client.To()))
			r.result = append(r.result, "caller id "+client.From())
			if client.From() != annaCallerID {
				r.problems = append(r.problems, fmt.Sprintf("the client saw caller id %q, want Anna's %s", client.From(), annaCallerID))
			}
			d.say("Irina's line rings (%s) showing %s; she answers", client.To(), client.From())
			if err := client.Answer(actx); err != nil {
				return fmt.Errorf("the client answering: %w", err)
			}
			time.Sleep(time.Second) // a short conversation
			if err := client.Hangup(actx); err != nil {
				return err
			}
			state, err := d.callEnded(ctx, id)
			if err != nil {
				return err
			}
			r.result = append(r.result, "ended: "+state)
			if state != string(clicktocall.Completed) {
				r.problems = append(r.problems, "the call ended "+state+", want completed")
			}
			r.noOtherPhone(d, "101")
			return nil
		},
		records: func(d *demo, c sandbox.Created) []string {
			return expectRecords(c, 0, 0, 0, func(p *[]string) {
				if len(c.Notes) != 1 || c.Notes[0].NoteType != sandbox.NoteCallOut || c.Notes[0].Params.CallResponsible != "1001" {
					*p = append(*p, "want one call_out note credited to Anna (1001)")
				}
			})
		},
	}
}

// click sends the widget's request and returns the call id.
func (d *demo) click(key string, manager int64, phone string) (string, error) {
	body, _ := json.Marshal(map[string]any{"manager": manager, "phone": phone})
	req, err := http.NewRequest(http.MethodPost, d.apiURL+"/v1/calls", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/calls: %d %s", res.StatusCode, out.Error)
	}
	return out.ID, nil
}

// callEnded waits for GET /v1/calls/{id} to say ended and returns the cause.
func (d *demo) callEnded(ctx context.Context, id string) (string, error) {
	cause := ""
	err := waitFor(ctx, d.say, "the click-to-call call to end", 10*time.Second, func() (bool, error) {
		req, err := http.NewRequest(http.MethodGet, d.apiURL+"/v1/calls/"+id, nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+clicktocall.Key(demoKeySecret, 1001))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		defer res.Body.Close()
		var c clicktocall.Call
		_ = json.NewDecoder(res.Body).Decode(&c)
		cause = string(c.Cause)
		return c.State == clicktocall.Ended, nil
	})
	return cause, err
}
