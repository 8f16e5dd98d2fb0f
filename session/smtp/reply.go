package smtp

import "gomta/session/reply"

// Reply is the reply value the server writes and backends return
// (session/reply, shared with the client, the relay and delivery).
type Reply = reply.Reply
