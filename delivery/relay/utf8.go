package relay

import (
	"bytes"
	"fmt"
	"io"

	"gomta/session/address"
	"gomta/session/reply"
	"gomta/session/smtpclient"
)

// maxHeaderScan bounds how much of a message is read to decide whether it
// needs SMTPUTF8: the header section only, and no more than this of it. A
// header section longer than this is judged on its first maxHeaderScan
// octets.
const maxHeaderScan = 64 << 10

// needsSMTPUTF8 reports whether j, whose message body is, can only be
// relayed with the SMTPUTF8 parameter (RFC 6531 §3.2, §3.4):
//   - an envelope address (sender or a recipient) is not ASCII, or
//   - the header section holds non-ASCII octets and the message came in by
//     a transaction that declared SMTPUTF8, which the Received field that
//     this host put on top of it tells ("with UTF8SMTP…", RFC 6531 §4.3).
//
// A message whose header has 8-bit octets but that was not declared
// SMTPUTF8 (legacy raw 8-bit headers under BODY=8BITMIME) does not need it:
// it is relayed as it came, as it would have been without SMTPUTF8.
//
// It returns the body to send: body itself, rewound when it was read and
// can seek (so that its size stays known to the client), else what was
// read followed by the rest.
func needsSMTPUTF8(j Job, body io.Reader) (bool, io.Reader, error) {
	if !address.IsASCII(j.From) {
		return true, body, nil
	}
	for _, r := range j.Rcpts {
		if !address.IsASCII(r) {
			return true, body, nil
		}
	}
	head, err := io.ReadAll(io.LimitReader(body, maxHeaderScan))
	if err != nil {
		return false, nil, err
	}
	rest := io.MultiReader(bytes.NewReader(head), body)
	if s, ok := body.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return false, nil, err
		}
		rest = body
	}
	if end := bytes.Index(head, []byte("\r\n\r\n")); end >= 0 {
		head = head[:end+2]
	}
	return declaredUTF8(head) && !address.IsASCII(string(head)), rest, nil
}

// declaredUTF8 reports whether the first field of a header section is a
// Received field whose "with" clause names an SMTPUTF8 transaction.
func declaredUTF8(head []byte) bool {
	const name = "received:"
	if len(head) < len(name) || !bytes.EqualFold(head[:len(name)], []byte(name)) {
		return false
	}
	field := head
	for i := 0; ; {
		n := bytes.IndexByte(field[i:], '\n')
		if n < 0 {
			break
		}
		i += n + 1
		if i >= len(field) || field[i] != ' ' && field[i] != '\t' {
			field = field[:i]
			break
		}
	}
	return bytes.Contains(field, []byte(" with UTF8SMTP"))
}

// addSMTPUTF8 adds the SMTPUTF8 MAIL parameter to env when j needs it and
// the next hop, c, offers it, and returns the body to send. When j needs it
// and the hop does not offer it, nothing is to be sent: every recipient gets
// a permanent 5.6.7 (RFC 6531 §3.2: no silent downgrade of the addresses),
// returned as errs. A message that cannot be read fails every recipient
// temporarily, as a local problem.
func addSMTPUTF8(env *smtpclient.Envelope, c *smtpclient.Client, j Job, body io.Reader, mx string) (msg io.Reader, errs []error) {
	need, msg, err := needsSMTPUTF8(j, body)
	var fail error
	switch {
	case err != nil:
		fail = fmt.Errorf("relay: read message header: %w", err)
	case !need:
		return msg, nil
	default:
		if ok, _ := c.Extension("SMTPUTF8"); ok {
			env.MailParams = append(env.MailParams, "SMTPUTF8")
			return msg, nil
		}
		fail = &reply.Reply{Code: reply.CodeNameNotAllow, Enhanced: reply.EnhNonASCII,
			Text: "SMTPUTF8 is required, but was not offered by host " + mx}
	}
	errs = make([]error, len(j.Rcpts))
	failAll(errs, fail)
	return nil, errs
}
