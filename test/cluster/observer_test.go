package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// The call observer (asterisk.observer with inbound: true): each Asterisk connects the
// observer's application through HAProxy (ari.conf [crmlink-observer-outbound]) to
// whichever crmlink is alive, which follows that Asterisk's calls and records each ended
// call, however wired (FastAGI here), as one outcome naming the Asterisk and one call note.

// metricValue is a crmlink's value of an unlabelled metric; -100 when it does not answer.
func metricValue(name, metric string) int {
	resp, err := client.Get(crmlinkURL[name] + "/metrics")
	if err != nil {
		return -100
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), metric+" %d", &n); err == nil {
			return n
		}
	}
	return -100
}

// observerConns is how many Asterisks have connected the observer to a crmlink; -100 when
// it does not answer.
func observerConns(name string) int { return metricValue(name, "crmlink_observer_connections") }

// allObserverConns is how many Asterisks have connected the observer to a live crmlink.
func allObserverConns() int {
	n := 0
	for name := range crmlinkURL {
		n += max(0, observerConns(name))
	}
	return n
}

// entityIDs is each Asterisk's entity id (the asterisk_id of its ARI events), by name.
func (s *stack) entityIDs() map[string]string {
	ids := map[string]string{}
	for _, a := range asterisks {
		out := s.docker("exec", prefix+a.name, "asterisk", "-rx", "core show settings")
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Entity ID" {
				ids[a.name] = strings.TrimSpace(v)
			}
		}
		require.NotEmpty(s.t, ids[a.name], "the entity id of %s in core show settings:\n%s", a.name, out)
	}
	return ids
}

// observed is one call outcome the observer logged ("observed call ended").
type observed struct {
	LinkedID string    `json:"linkedid"`
	Asterisk string    `json:"asterisk"`
	Start    time.Time `json:"start"`
	Message  string    `json:"message"`
	instance string
}

// pbx is the Asterisk whose systemname prefixes the linkedid (asterisk-1-1796....).
func (o observed) pbx() string {
	for _, a := range asterisks {
		if strings.HasPrefix(o.LinkedID, a.name+"-") {
			return a.name
		}
	}
	return ""
}

// observedCalls reads every outcome the observer logged on either crmlink, killed ones
// included (their logs stay with the container).
func (s *stack) observedCalls() []observed {
	var all []observed
	for name := range crmlinkURL {
		out, err := testrig.Exec(s.t, "", time.Minute, "docker", "logs", prefix+name)
		require.NoError(s.t, err)
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, `"observed call ended"`) {
				continue
			}
			var o observed
			if json.Unmarshal([]byte(line), &o) == nil && o.Message == "observed call ended" {
				o.instance = name
				all = append(all, o)
			}
		}
	}
	return all
}

// newSince is the outcomes not among before's.
func newSince(before, now []observed) []observed {
	seen := map[string]bool{}
	for _, o := range before {
		seen[o.instance+" "+o.LinkedID] = true
	}
	var out []observed
	for _, o := range now {
		if !seen[o.instance+" "+o.LinkedID] {
			out = append(out, o)
		}
	}
	return out
}

// stasisCallNotes is callNotes without the notes of calls the observer recorded: the
// ARI controller's calls.
func stasisCallNotes(t *testing.T, s *stack) []string {
	byObserver := map[string]bool{}
	for _, o := range s.observedCalls() {
		byObserver[o.LinkedID] = true
	}
	return slices.DeleteFunc(callNotes(t), func(u string) bool { return byObserver[u] })
}

// assertOneNoteEach waits for a call note of every outcome (the killed instance's queued
// ones are claimed by the other after 30 s), then checks each has exactly one and that no
// call was recorded twice, by the same instance or both.
func assertOneNoteEach(t *testing.T, outcomes []observed) {
	t.Helper()
	perCall := map[string]int{}
	for _, o := range outcomes {
		perCall[o.LinkedID]++
	}
	for id, n := range perCall {
		assert.Equal(t, 1, n, "call %s: one outcome (instances: %v)", id, outcomes)
	}
	noted := func() map[string]int {
		n := map[string]int{}
		for _, u := range callNotes(t) {
			n[u]++
		}
		return n
	}
	// Every call of the test is the same client's: their notes are written one after the
	// other (the event queue's order key), behind everything else in the queue.
	testrig.WaitFor(t, 3*time.Minute, fmt.Sprintf("call notes of %d observed calls", len(perCall)), func() bool {
		n := noted()
		for id := range perCall {
			if n[id] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // a second note for a call would come now
	n := noted()
	for id := range perCall {
		assert.Equal(t, 1, n[id], "call %s: one call note", id)
	}
}

// testObserver registers the observer's subtests (6 and 7).
func testObserver(ctx context.Context, sub *subtests, s *stack, ph *phones) {
	sub.add("calls through both Asterisks via FastAGI are observed once each, naming their Asterisk", func(t *testing.T) {
		testrig.WaitFor(t, 10*time.Second, "both Asterisks connected the observer", func() bool {
			return allObserverConns() == 2
		})
		t.Logf("observer connections: crmlink-1 %d, crmlink-2 %d", observerConns("crmlink-1"), observerConns("crmlink-2"))
		eid := s.entityIDs()
		require.NotEqual(t, eid["asterisk-1"], eid["asterisk-2"], "two Asterisks, two entity ids")
		before := s.observedCalls()
		placedOn := map[string]int{}
		for range 2 {
			for _, a := range asterisks {
				r := ph.place(ctx, a, agiExten)
				assert.Equal(t, toOwner, r.outcome, "a call on %s (%s)", a.name, r.reason)
				placedOn[a.name]++
			}
		}
		var got []observed
		testrig.WaitFor(t, 15*time.Second, "an outcome of each call", func() bool {
			got = newSince(before, s.observedCalls())
			return len(got) >= 4
		})
		on := map[string]int{}
		for _, o := range got {
			on[o.pbx()]++
			assert.Equal(t, eid[o.pbx()], o.Asterisk, "call %s (logged by %s) names its Asterisk", o.LinkedID, o.instance)
		}
		assert.Equal(t, placedOn, on, "outcomes per Asterisk")
		assertOneNoteEach(t, got)
	})

	sub.add("the crmlink holding the observer's connections killed during a call burst", func(t *testing.T) {
		testrig.WaitFor(t, 10*time.Second, "both Asterisks connected the observer", func() bool {
			return allObserverConns() == 2
		})
		victim, other := "crmlink-1", "crmlink-2"
		if observerConns(victim) < observerConns(other) { // the one holding more (or both)
			victim, other = other, victim
		}
		t.Logf("%s follows %d Asterisks, %s %d", victim, observerConns(victim), other, observerConns(other))
		// When the Asterisks have connected the observer to the survivor again.
		var mu sync.Mutex
		var dead, back time.Time
		watch, stopWatch := context.WithCancel(ctx)
		go func() {
			for watch.Err() == nil {
				now := time.Now()
				d, o := observerConns(victim), observerConns(other)
				mu.Lock()
				if dead.IsZero() && d < 0 {
					dead = now
				}
				if !dead.IsZero() && back.IsZero() && o == 2 {
					back = now
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
		before := s.observedCalls()
		calls, killed := burstThroughAKill(ctx, t, s, ph, victim, agiExten, "observer: ")
		testrig.WaitFor(t, 10*time.Second, "both Asterisks reconnected the observer to "+other, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !back.IsZero()
		})
		stopWatch()
		mu.Lock()
		reconnected := back
		mu.Unlock()
		t.Logf("observer: both Asterisks reconnected to %s %s after the kill", other, reconnected.Sub(killed).Round(10*time.Millisecond))

		// Each call's outcome starts between its INVITE and the next call on its Asterisk
		// (a burst places calls on each Asterisk one after the other).
		// Every call has ended (place hangs up); its outcome is logged as its last channel
		// goes, well within this.
		time.Sleep(3 * time.Second)
		got := newSince(before, s.observedCalls())
		used := make([]bool, len(got))
		var lost []placed
		inFlight, inFlightRecorded := 0, 0
		for i, c := range calls {
			end := c.at.Add(time.Minute)
			for _, n := range calls[i+1:] {
				if n.pbx == c.pbx {
					end = n.at
					break
				}
			}
			found := false
			for j, o := range got {
				if !used[j] && o.pbx() == c.pbx && !o.Start.Before(c.at.Add(-200*time.Millisecond)) && o.Start.Before(end) {
					used[j], found = true, true
					break
				}
			}
			if !found {
				lost = append(lost, c)
			}
			if c.at.Before(killed) && end.After(killed) { // going on when the kill came
				inFlight++
				if found {
					inFlightRecorded++
				}
			}
		}
		t.Logf("observer: %d calls were going on at the kill, %d of them recorded", inFlight, inFlightRecorded)
		for _, c := range lost {
			t.Logf("observer: not recorded: a call on %s placed %s after the kill", c.pbx, c.at.Sub(killed).Round(10*time.Millisecond))
			assert.True(t, c.at.Before(reconnected), "a call on %s placed %s after the reconnect is not recorded", c.pbx, c.at.Sub(reconnected).Round(10*time.Millisecond))
		}
		t.Logf("observer: %d calls, %d recorded, %d not recorded (placed between %s before and %s after the kill); reconnected %s after the kill",
			len(calls), len(calls)-len(lost), len(lost), lostSpan(lost, killed, true), lostSpan(lost, killed, false), reconnected.Sub(killed).Round(10*time.Millisecond))
		var after int
		for _, c := range calls {
			if c.at.After(reconnected) {
				after++
			}
		}
		assert.Positive(t, after, "calls placed after the reconnect")
		eid := s.entityIDs()
		for _, o := range got {
			assert.Equal(t, eid[o.pbx()], o.Asterisk, "call %s (logged by %s) names its Asterisk", o.LinkedID, o.instance)
		}
		assertOneNoteEach(t, got)

		s.docker("start", prefix+victim)
		testrig.WaitFor(t, 60*time.Second, victim+" restarted", func() bool { return healthz(crmlinkURL[victim]) == 200 })
		waitInPool(t, victim, "UP")
	})
}

// lostSpan is how long before (first) or after the kill the first or last lost call was
// placed.
func lostSpan(lost []placed, killed time.Time, first bool) time.Duration {
	if len(lost) == 0 {
		return 0
	}
	c := lost[len(lost)-1]
	if first {
		c = lost[0]
		return killed.Sub(c.at).Round(10 * time.Millisecond)
	}
	return c.at.Sub(killed).Round(10 * time.Millisecond)
}
