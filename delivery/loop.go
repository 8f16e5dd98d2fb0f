package delivery

import (
	"bufio"
	"bytes"
	"io"

	"gomta/queue"
	"gomta/session/smtp"
)

// MaxReceived is the number of Received: header fields above which a
// message is taken to be looping (RFC 5321 §6.3 suggests at least 100).
const MaxReceived = 100

// maxHeaderScan bounds how much of a message is read to count its Received:
// fields; a header section longer than this is not scanned further.
const maxHeaderScan = 1 << 20

// errLooping is the permanent failure of a looping message's remote
// recipients: RFC 5321 §6.3, RFC 3463 X.4.6 "routing loop detected".
var errLooping = &smtp.Reply{Code: 554, Enhanced: "5.4.6", Text: "too many Received: headers: mail loop detected"}

// checkLoop returns errLooping when m's header section holds more than
// MaxReceived Received: fields, nil otherwise (an unreadable body is left
// to the relay to report).
func checkLoop(m *queue.Message) error {
	body, err := m.Open()
	if err != nil {
		return nil
	}
	defer body.Close()
	if countReceived(body) > MaxReceived {
		return errLooping
	}
	return nil
}

// countReceived counts the Received: fields of a message's header section
// (up to the empty line that ends it, at most maxHeaderScan octets).
func countReceived(r io.Reader) int {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeaderScan), 32<<10)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (err == nil || len(line) > 0) {
			return n // end of the header section
		}
		if len(line) >= 9 && bytes.EqualFold(line[:9], []byte("received:")) {
			n++
		}
		for err == bufio.ErrBufferFull { // a long line: skip its rest
			_, err = br.ReadSlice('\n')
		}
		if err != nil {
			return n
		}
	}
}
