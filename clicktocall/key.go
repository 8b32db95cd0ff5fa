package clicktocall

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// MinSecretLen is the shortest click_to_call.key_secret accepted: the keys are only as
// hard to forge as the secret is to guess.
const MinSecretLen = 32

// Key is a manager's click-to-call key: "<crm user id>.<HMAC-SHA256 of the id under the
// secret>". It lets a browser place calls for that one manager and read their state, and
// nothing else; crmlink stores no keys (it recomputes them), and changing the secret
// revokes every key at once.
func Key(secret string, manager int64) string {
	return strconv.FormatInt(manager, 10) + "." + mac(secret, manager)
}

// VerifyKey returns the manager a key was made for, or false when the key was not made
// with this secret (or the secret is empty).
func VerifyKey(secret, key string) (int64, bool) {
	if len(secret) < MinSecretLen {
		return 0, false
	}
	id, sum, found := strings.Cut(key, ".")
	if !found {
		return 0, false
	}
	manager, err := strconv.ParseInt(id, 10, 64)
	if err != nil || manager <= 0 {
		return 0, false
	}
	if !hmac.Equal([]byte(sum), []byte(mac(secret, manager))) {
		return 0, false
	}
	return manager, true
}

func mac(secret string, manager int64) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("crmlink click-to-call key v1 manager " + strconv.FormatInt(manager, 10)))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
