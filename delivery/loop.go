package delivery

import (
	"gomta/queue"
	"gomta/session/received"
	"gomta/session/reply"
)

// MaxReceived is the number of Received: header fields above which a
// message is taken to be looping (RFC 5321 §6.3 suggests at least 100).
const MaxReceived = 100

// maxHeaderScan bounds how much of a message is read to count its Received:
// fields (received.Count); a header section longer than this is not
// scanned further.
const maxHeaderScan = 1 << 20

// errLooping is the permanent failure of a looping message's remote
// recipients: RFC 5321 §6.3, RFC 3463 X.4.6 "routing loop detected".
var errLooping = &reply.Reply{Code: reply.CodeTxFailed, Enhanced: reply.EnhLoop, Text: "too many Received: headers: mail loop detected"}

// checkLoop returns errLooping when m's header section holds more than
// MaxReceived Received: fields, nil otherwise (an unreadable body is left
// to the relay to report).
func checkLoop(m *queue.Message) error {
	body, err := m.Open()
	if err != nil {
		return nil
	}
	defer body.Close()
	if n, _ := received.Count(body, maxHeaderScan); n > MaxReceived {
		return errLooping
	}
	return nil
}
