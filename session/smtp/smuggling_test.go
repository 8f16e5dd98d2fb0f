package smtp

import (
	"testing"
)

// TestSmuggling sends bodies holding would-be end markers made of bare CR or
// LF (and NULs) followed by a second transaction. The server must see a single
// message, end it only at the real CRLF.CRLF and never run the smuggled
// commands.
func TestSmuggling(t *testing.T) {
	t.Parallel()
	const (
		bare = "550 5.5.2 bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"
		nul  = "550 5.5.2 NUL octet in message (RFC 5322 section 2.3)"
	)
	tests := []struct {
		name, marker string
		refused      string
	}{
		{"LF.LF", "\n.\n", bare},
		{"CR.CR", "\r.\r", bare},
		{"CRLF.LF", "\r\n.\n", bare},
		{"LF.CRLF", "\n.\r\n", bare},
		{"CRLF.CR", "\r\n.\r", bare},
		{"CR.CRLF", "\r.\r\n", bare},
		{"CRLF.CRCRLF", "\r\n.\r\r\n", bare},
		{"LF.LF with NUL", "\n\x00.\n", bare},
		{"CRLF.NUL.CRLF", "\r\n.\x00\r\n", nul},
		{"CRLF.NULCR LF", "\r\n.\r\x00\n", bare},
		{"NUL CRLF.CRLF", "\x00\r\n\x00.\r\n", nul},
		{"CRLF CR LF", "\r\n\r\n\n.\r\n", bare},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := &fakeBackend{mailHook: func(_ *Peer, from string) error {
				if from == "evil@example.org" {
					t.Errorf("smuggled MAIL FROM reached the backend")
				}
				return nil
			}}
			_, addr := startServer(t, Config{}, be)
			cl := dialReady(t, addr)
			cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
			cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
			smuggled := "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nhi\r\n"
			cl.write("Subject: hello\r\n\r\nhello" + tc.marker + smuggled + ".\r\n")
			cl.expect(tc.refused)
			cl.send("NOOP")
			cl.expect("250 2.0.0 OK") // nothing else was answered in between
			if c, a := be.counts(); c != 0 || a != 1 {
				t.Errorf("committed %d aborted %d, want 0 1", c, a)
			}
		})
	}
}
