package mta

import (
	"net"
	"net/smtp"
	"strconv"
	"testing"

	"gomta/mta/config"
	"gomta/mta/mtatest"
	"gomta/mta/mtatest/dnstest"
)

// TestRealDNSBetweenHosts runs the course's two hosts with resolver = "dns"
// and a DNS server of the test's own as their only name server. gmail.com
// has no [MX] entry: its MX records name a best mail exchanger that refuses
// connections and a second one that is the gmail.com host, reached at
// relay_port. Mail to a null-MX domain and to a domain that does not exist
// bounces at once with 5.1.10 and 5.1.2.
func TestRealDNSBetweenHosts(t *testing.T) {
	t.Parallel()
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 not usable: %v", err)
	} else {
		ln.Close()
	}
	ns := dnstest.Start(t, dnstest.Zone{Records: []string{
		"gmail.com. IN MX 10 mx1.gmail.com.",
		"gmail.com. IN MX 20 mx2.gmail.com.",
		"mx1.gmail.com. IN A 127.0.0.2", // nothing listens there at relay_port
		"mx2.gmail.com. IN A 127.0.0.1",
		"null.test. IN MX 0 .",
	}})
	hosts := runHostsWith(t, "resolver = \"dns\"\ndns_servers = [\""+ns.Addr+"\"]\n",
		func(cfg *config.Config, hosts map[string]*Host) {
			delete(cfg.MX, "gmail.com")
			_, port, _ := net.SplitHostPort(hosts["gmail.com"].SMTPAddr.String())
			cfg.RelayPort, _ = strconv.Atoi(port)
			for _, h := range hosts {
				h.relay.set(h.newRelay(cfg)) // with the port the gmail.com host got
			}
		})
	qq, gm := hosts["exmail.qq.com"], hosts["gmail.com"]
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		[]byte("Subject: through real DNS\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	mtatest.Eventually(t, "the message in usr@gmail.com's mailbox", func() bool {
		return countSubject(maildir(gm, "usr@gmail.com"), "through real DNS") == 1
	})
	if ns.Queries("gmail.com", "MX") == 0 || ns.Queries("mx1.gmail.com", "A") == 0 || ns.Queries("mx2.gmail.com", "A") == 0 {
		t.Fatal("the test's DNS server was not asked for gmail.com's MX and both mail exchangers")
	}

	for _, tc := range []struct{ rcpt, status string }{
		{"x@null.test", "Status: 5.1.10"},
		{"x@nx.test", "Status: 5.1.2"},
	} {
		subject := "to " + tc.rcpt
		if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr2@mail.sustech.edu.cn", []string{tc.rcpt},
			[]byte("Subject: "+subject+"\r\n\r\nhello\r\n")); err != nil {
			t.Fatal(err)
		}
		var bounce string
		mtatest.Eventually(t, "the bounce for "+tc.rcpt, func() bool {
			reports, _ := reportsIn(qq, "usr2@mail.sustech.edu.cn")
			for _, m := range reports {
				if countSubject([]string{m}, subject) == 1 {
					bounce = m
					return true
				}
			}
			return false
		})
		wantAll(t, "bounce", bounce, "Action: failed", "Final-Recipient: rfc822; "+tc.rcpt, tc.status)
	}
	mtatest.Eventually(t, "exmail.qq.com's queue empty", func() bool { return qq.Queue.Len() == 0 })
}

// TestIPv6Relay runs both hosts on ::1: the fake DNS's [P] values are
// "[::1]:port", and mail goes from one host to the other over IPv6.
func TestIPv6Relay(t *testing.T) {
	t.Parallel()
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	hosts := runHosts(t, "listen = \"::1\"\n")
	qq, gm := hosts["exmail.qq.com"], hosts["gmail.com"]
	if host, _, _ := net.SplitHostPort(gm.SMTPAddr.String()); host != "::1" {
		t.Fatalf("gmail.com listens on %s", gm.SMTPAddr)
	}
	if err := smtp.SendMail(qq.SMTPAddr.String(), nil, "usr1@mail.sustech.edu.cn", []string{"usr@gmail.com"},
		[]byte("Subject: over IPv6\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	mtatest.Eventually(t, "the message in usr@gmail.com's mailbox", func() bool {
		return countSubject(maildir(gm, "usr@gmail.com"), "over IPv6") == 1
	})
}
