package mta

import (
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"testing"

	"gomta/mta/config"
	"gomta/mta/mtatest"
)

// TestMailLoopingBackToMyselfBounces is issue 9 item 3: with gmail.com's MX
// pointed back at exmail.qq.com itself, a trusted sender's message used to
// go around until it outgrew max_message_size. The relay now never connects
// to its own listener: the sender gets a 5.4.6 bounce saying so, and the
// message is gone from the queue.
func TestMailLoopingBackToMyselfBounces(t *testing.T) {
	hosts := runHostsWith(t, "retry = [\"100ms\"]\n", func(cfg *config.Config, hosts map[string]*Host) {
		qq := hosts["exmail.qq.com"]
		cfg.P[cfg.MX["gmail.com"]] = qq.SMTPAddr.String()
	})
	qq := hosts["exmail.qq.com"]
	body := "Subject: round and round\r\n\r\nhello\r\n"
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	var bounce string
	mtatest.Eventually(t, "the loop's bounce in usr1's mailbox", func() bool {
		for _, m := range maildir(qq, "usr1@mail.sustech.edu.cn") {
			if strings.Contains(m, "multipart/report") {
				bounce = m
				return true
			}
		}
		return false
	})
	for _, want := range []string{"usr@gmail.com", "5.4.6", "loops back to myself", "Subject: round and round"} {
		if !strings.Contains(bounce, want) {
			t.Errorf("bounce lacks %q:\n%s", want, bounce)
		}
	}
	mtatest.Eventually(t, "exmail.qq.com's queue empty", func() bool { return qq.Queue.Len() == 0 })
	if msgs := maildir(qq, "usr1@mail.sustech.edu.cn"); len(msgs) != 1 {
		t.Errorf("usr1 holds %d messages, want the bounce only", len(msgs))
	}
}

// TestBounceQueuedWhenTheQueueIsFull is issue 9 item 2 end to end: with
// max_queue = 1, the bounce of a message to a domain that does not exist
// could never be queued (the message itself filled the queue), and after its
// last attempt the message was dropped with only an error line. Bounces now
// have room of their own: the sender gets the bounce.
func TestBounceQueuedWhenTheQueueIsFull(t *testing.T) {
	hosts := runHosts(t, "max_queue = 1\nretry = [\"50ms\", \"50ms\"]\n")
	qq := hosts["exmail.qq.com"]
	body := "Subject: to nowhere\r\n\r\nhello\r\n"
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"someone@nowhere.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	mtatest.Eventually(t, "the bounce in usr1's mailbox", func() bool {
		for _, m := range maildir(qq, "usr1@mail.sustech.edu.cn") {
			if strings.Contains(m, "someone@nowhere.test") && strings.Contains(m, "5.1.2") {
				return true
			}
		}
		return false
	})
	mtatest.Eventually(t, "exmail.qq.com's queue empty", func() bool { return qq.Queue.Len() == 0 })
}

func TestSelfAddrs(t *testing.T) {
	lnAny, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnAny.Close()
	lnLo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnLo.Close()
	anyPort := strconv.Itoa(lnAny.Addr().(*net.TCPAddr).Port)
	loPort := strconv.Itoa(lnLo.Addr().(*net.TCPAddr).Port)
	self := selfAddrs([]net.Listener{lnAny, lnLo, nil})
	for addr, want := range map[string]bool{
		"127.0.0.1:" + loPort:  true,
		"localhost:" + loPort:  true,
		"127.0.0.2:" + loPort:  false, // another loopback address: not this listener
		"127.0.0.1:" + anyPort: true,  // a wildcard listener is reached on loopback
		"127.0.0.9:" + anyPort: true,
		"192.0.2.1:" + anyPort: false, // not an address of this machine
		"mx.example:" + loPort: false, // names are not looked up
		"127.0.0.1:1":          false,
		"no port":              false,
	} {
		if got := self(addr); got != want {
			t.Errorf("self(%q) = %v, want %v", addr, got, want)
		}
	}
}
