package clicktocall

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

// fakePBX records the attempts placed and fails when told to.
type fakePBX struct {
	mu       sync.Mutex
	attempts []Attempt
	fail     error
}

func (f *fakePBX) Place(_ context.Context, a Attempt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, a)
	return f.fail
}

func newService(pbx PBX) *Service {
	managers := map[crm.UserID]Manager{
		1001: {User: 1001, Endpoints: []string{"PJSIP/101"}, CallerID: "+74950000101"},
		1002: {User: 1002},
	}
	return New(Options{Region: "RU", PBX: pbx, Manager: func(u crm.UserID) (Manager, bool) {
		m, ok := managers[u]
		return m, ok
	}})
}

func TestPlaceChecksTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		manager crm.UserID
		number  string
		err     error
		dial    string
	}{
		{"a card's spelling", 1001, "+7 (495) 100-00-01", nil, "84951000001"},
		{"national with 8", 1001, "8 916 123 45 67", nil, "89161234567"},
		{"abroad", 1001, "+44 20 7946 0958", nil, "+442079460958"},
		{"garbage", 1001, "call me", ErrBadRequest, ""},
		{"an extension", 1001, "101", ErrBadRequest, ""},
		{"too long", 1001, "+7 495 100 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", ErrBadRequest, ""},
		{"empty", 1001, " ", ErrBadRequest, ""},
		{"no manager", 0, "+74951000001", ErrBadRequest, ""},
		{"unknown manager", 4242, "+74951000001", ErrUnknownManager, ""},
		{"manager without phones", 1002, "+74951000001", ErrNoPhones, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := &fakePBX{}
			c, err := newService(pbx).Place(context.Background(), tc.manager, tc.number)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Empty(t, pbx.attempts, "nothing dialled")
				return
			}
			require.NoError(t, err)
			require.Len(t, pbx.attempts, 1)
			a := pbx.attempts[0]
			assert.Equal(t, tc.dial, a.Dial)
			assert.Equal(t, "+74950000101", a.CallerID)
			assert.Equal(t, []string{"PJSIP/101"}, a.Endpoints)
			assert.Equal(t, RingingManager, c.State)
			assert.Equal(t, c.ID, a.ID)
		})
	}
}

func TestOneCallPerManagerAtATime(t *testing.T) {
	pbx := &fakePBX{}
	s := newService(pbx)
	first, err := s.Place(context.Background(), 1001, "+74951000001")
	require.NoError(t, err)
	_, err = s.Place(context.Background(), 1001, "+74951000002")
	require.ErrorIs(t, err, ErrInProgress)
	assert.Len(t, pbx.attempts, 1, "never rung twice at once")

	pbx.attempts[0].Update(RingingClient, "")
	got, _ := s.Call(first.ID)
	assert.Equal(t, RingingClient, got.State)
	pbx.attempts[0].Update(Ended, ClientBusy)
	pbx.attempts[0].Update(Talking, "") // late news of an ended call changes nothing
	got, _ = s.Call(first.ID)
	assert.Equal(t, Ended, got.State)
	assert.Equal(t, ClientBusy, got.Cause)

	_, err = s.Place(context.Background(), 1001, "+74951000002")
	require.NoError(t, err, "free again once the call ended")
}

func TestAFailedPlacementFreesTheManager(t *testing.T) {
	pbx := &fakePBX{fail: errors.New("not connected")}
	s := newService(pbx)
	_, err := s.Place(context.Background(), 1001, "+74951000001")
	require.ErrorIs(t, err, ErrUnavailable)
	pbx.fail = nil
	_, err = s.Place(context.Background(), 1001, "+74951000001")
	require.NoError(t, err)
}

func TestEndedCallsAreForgottenAfterKeep(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	pbx := &fakePBX{}
	s := newService(pbx)
	s.opts.Now, s.opts.Keep = func() time.Time { return now }, time.Hour
	c, err := s.Place(context.Background(), 1001, "+74951000001")
	require.NoError(t, err)
	pbx.attempts[0].Update(Ended, Completed)
	now = now.Add(2 * time.Hour)
	_, err = s.Place(context.Background(), 1001, "+74951000001")
	require.NoError(t, err)
	_, found := s.Call(c.ID)
	assert.False(t, found)
}

func TestKeys(t *testing.T) {
	const secret = "unit-test-click-to-call-secret-0123456789"
	k := Key(secret, 1001)
	m, ok := VerifyKey(secret, k)
	assert.True(t, ok)
	assert.EqualValues(t, 1001, m)
	for _, bad := range []string{"", "1001", "1001.", k + "x", "1002" + k[4:], Key(secret+"!", 1001), "-1." + k[5:]} {
		_, ok := VerifyKey(secret, bad)
		assert.False(t, ok, bad)
	}
	_, ok = VerifyKey("short", Key("short", 1001))
	assert.False(t, ok, "a secret too short to be safe accepts no key")
}
