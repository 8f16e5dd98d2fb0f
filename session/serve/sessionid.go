package serve

import (
	"crypto/rand"
	"encoding/base32"
)

// sessionIDEncoding is base32hex in lower case, the alphabet of the queue's
// message ids, so that every id in the log reads alike; a session id (16
// characters) is shorter than a msg_id (20), so the two are never confused.
var sessionIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// SessionID returns a new random session id, the session_id of every log
// line of one SMTP or POP3 session: 80 random bits, 16 characters.
func SessionID() string {
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return sessionIDEncoding.EncodeToString(b[:])
}
