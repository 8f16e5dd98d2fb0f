// Package control owns the protocol of mtad's control socket: the request
// and response values, the client that mtactl uses (Dial, Client.Call), and
// the build's version string (Version). The server is package ctlserver;
// this package imports nothing of gomta, so that mtactl links neither the
// queue nor the servers.
//
// # Protocol, version 1
//
// The socket is a Unix-domain stream socket (default <data dir>/control.sock,
// mode 0600: whoever may open it may run every command). A client writes one
// request per line, a JSON object (Request); the server answers each with
// one line, a JSON object (Response), in order, and the client may send the
// next request on the same connection. Every request and response carries
// "v": 1; a server answers a request of another version with ok=false and an
// error naming the versions it speaks, so that a newer mtactl fails with a
// clear line and not with a misread answer. Fields a side does not know are
// ignored, so adding fields keeps the version.
//
//	-> {"v":1,"cmd":"queue.hold","ids":["06h4ijibtdit2fjk3vc0"]}
//	<- {"v":1,"ok":true,"results":[{"msg_id":"06h4ijibtdit2fjk3vc0","host":"gmail.com","done":"held"}]}
//
// Commands: "status"; "queue.list" (messages); "queue.show" (one id in ids;
// message with history, headers, and body when body is set); "queue.retry"
// (ids, or all), "queue.hold", "queue.release", "queue.drop" (ids; bounce)
// with one result per id, an unknown id being a result with an error;
// "reload" (changes, or ok=false with problems). "host" restricts a command
// to one mail host; without it a command covers every host of the process.
// ok=false with error means the daemon refused the request as a whole.
package control

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"time"
)

// ProtocolVersion is the version of the protocol this package speaks.
const ProtocolVersion = 1

// Commands.
const (
	CmdStatus  = "status"
	CmdList    = "queue.list"
	CmdShow    = "queue.show"
	CmdRetry   = "queue.retry"
	CmdHold    = "queue.hold"
	CmdRelease = "queue.release"
	CmdDrop    = "queue.drop"
	CmdReload  = "reload"
)

// Request is one line from the client.
type Request struct {
	V      int      `json:"v"`
	Cmd    string   `json:"cmd"`
	Host   string   `json:"host,omitempty"`   // one mail host; "" = every host
	IDs    []string `json:"ids,omitempty"`    // message ids
	All    bool     `json:"all,omitempty"`    // queue.retry: every message
	Bounce bool     `json:"bounce,omitempty"` // queue.drop: a DSN to the sender first
	Body   bool     `json:"body,omitempty"`   // queue.show: the body too
}

// Response is the server's one line per request.
type Response struct {
	V        int       `json:"v"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`    // why the request was refused (OK false)
	Status   *Status   `json:"status,omitempty"`   // status
	Messages []Message `json:"messages,omitempty"` // queue.list, queue.show (one)
	Headers  string    `json:"headers,omitempty"`  // queue.show: the message's header section
	Body     string    `json:"body,omitempty"`     // queue.show with body: the whole message
	Results  []Result  `json:"results,omitempty"`  // retry, hold, release, drop: one per id
	Changes  []string  `json:"changes,omitempty"`  // reload: what changed
	Problems []string  `json:"problems,omitempty"` // reload refused: every problem of the new config
}

// Message is one queued message; as a JSON line it is what
// `mtactl queue list -json` prints (JSON Lines, as postqueue -j).
type Message struct {
	MsgID       string      `json:"msg_id"`
	Host        string      `json:"host"`
	From        string      `json:"from"` // "" for the null sender
	Size        int64       `json:"size"`
	ArrivalTime time.Time   `json:"arrival_time"` // RFC 3339
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt"` // RFC 3339; a held message is not attempted
	Held        bool        `json:"held"`
	Active      bool        `json:"active"` // an attempt is in progress
	Recipients  []Recipient `json:"recipients"`
	History     []Attempt   `json:"history,omitempty"` // queue.show: the last attempts, oldest first
}

// Recipient is one recipient not done yet.
type Recipient struct {
	Address      string `json:"address"`
	Status       string `json:"status"` // "deferred", "active", "held", or "failed" (bounce not queued yet)
	LastCode     int    `json:"last_code"`
	LastEnhanced string `json:"last_enhanced"`
	LastReply    string `json:"last_reply"`
}

// Attempt is one past delivery attempt.
type Attempt struct {
	Time    time.Time       `json:"time"`
	Attempt int             `json:"attempt"`
	Results []AttemptResult `json:"results"`
}

// AttemptResult is what an attempt did for one recipient.
type AttemptResult struct {
	Rcpt     string `json:"rcpt"`
	Result   string `json:"result"` // "delivered", "deferred" or "failed"
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	Reply    string `json:"reply,omitempty"`
	Remote   string `json:"remote,omitempty"`
}

// Result is what an action did to one id.
type Result struct {
	MsgID string `json:"msg_id"`
	Host  string `json:"host,omitempty"`  // the host that holds it
	Done  string `json:"done,omitempty"`  // what was done, in words
	Error string `json:"error,omitempty"` // why not (an unknown id among them)
}

// Status is the daemon's state for `mtactl status`.
type Status struct {
	Version      string       `json:"version"`
	Started      time.Time    `json:"started"`
	UptimeSecs   float64      `json:"uptime_seconds"`
	ConfigFile   string       `json:"config_file"`
	ConfigLoaded time.Time    `json:"config_loaded"`
	Hosts        []HostStatus `json:"hosts"`
}

// HostStatus is one mail host.
type HostStatus struct {
	Name         string            `json:"name"`
	Listeners    map[string]string `json:"listeners"` // "smtp", "pop3", "smtps", "pop3s" → address
	SMTPSessions int               `json:"smtp_sessions"`
	POP3Sessions int               `json:"pop3_sessions"`
	Queue        QueueStatus       `json:"queue"`
}

// QueueStatus counts a host's queued messages by state.
type QueueStatus struct {
	Messages      int       `json:"messages"`
	Deferred      int       `json:"deferred"`
	Active        int       `json:"active"`
	Held          int       `json:"held"`
	OldestArrival time.Time `json:"oldest_arrival,omitzero"`
	OldestAgeSecs float64   `json:"oldest_age_seconds"`
}

// Client is one connection to the control socket.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	enc  *json.Encoder
}

// Dial connects to the control socket at path.
func Dial(path string, timeout time.Duration) (*Client, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, r: bufio.NewReader(c), enc: json.NewEncoder(c)}, nil
}

// Call sends req (its version set here) and reads the response. An error
// means the exchange failed (the daemon went away, or answered something
// that is not a response); a refusal is a Response with OK false.
func (c *Client) Call(req Request) (*Response, error) {
	req.V = ProtocolVersion
	if err := c.enc.Encode(req); err != nil {
		return nil, err
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("bad response: %w", err)
	}
	if resp.V != ProtocolVersion {
		return nil, fmt.Errorf("the daemon speaks control protocol version %d, this client %d", resp.V, ProtocolVersion)
	}
	return &resp, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Version describes the running binary from its build information: module
// version, VCS revision and time (with "+dirty" for a modified tree), and
// the Go version.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "gomta (no build information)"
	}
	v := []string{"gomta", bi.Main.Version}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v = append(v, "rev "+rev[:min(len(rev), 12)]+dirty)
	}
	if at != "" {
		v = append(v, at)
	}
	return strings.Join(append(v, bi.GoVersion), " ")
}
