// Package jsq owns the queue of one mail host kept on NATS JetStream, so
// that every node of a gomta cluster accepts, delivers, lists and acts on
// the same messages, and a node that dies loses nothing acknowledged. It
// implements queue.Spool with the local queue's semantics (queue/doc.go):
// the same retry schedule (queue.Schedule), final attempt and 5.4.7 bounce
// past MaxLifetime, bounces, delay and success notices honouring NOTIFY,
// hold, release, retry and drop.
//
// # Where things are
//
// Per host, named from a collision-free token (the host name in hex):
//
//	stream GOMTA_Q_<token>    WorkQueue retention, subjects gomta.q.<token>.m.<id>:
//	                          one immutable stream message per queued message; the
//	                          header Gomta-Envelope carries the original envelope
//	                          (from, rcpts, received, size, DSN params) and
//	                          Gomta-Gen its generation; the payload is the body
//	                          when it is at most 256 KiB and fits under the server's
//	                          max payload, else empty and the body is the object <id>
//	objects GOMTA_QB_<token>  bodies too big to be a payload, streamed in and out
//	KV GOMTA_QS_<token>       the mutable state of each message, keyed by id
//	                          (pending, failed and succeeded recipients, attempts,
//	                          history, held, delay warned, node and delivery
//	                          holding an attempt, done marker)
//
// # Invariants
//
// A message is queued iff its stream message exists. Commit returns nil only
// once the stream message (published with Nats-Msg-Id <id>, so a retried
// publish makes no second one) and its state are acknowledged by JetStream.
// Every state change is a revision-checked KV update, so two nodes (or an
// attempt and a control action) never overwrite each other's change: the
// loser reads again and merges.
//
// A stream message never names a body object that was deleted: a body is
// deleted only once its stream message is surely gone (acked, purged) or
// was surely never stored.
//
// # Commit on error
//
// When Commit returns an error (the client is answered 4xx), one of these
// holds, and the staged body is gone in every case:
//
//   - nothing of the message is left (the publish surely failed, or its
//     stream message was purged again after the state could not be made),
//     but at worst a body object no stream message names, never delivered
//     and deleted by Run's sweep (every node, every 10 min) once older than
//     the de-duplication window;
//   - the publish's outcome is unknown (a timeout or a leader election may
//     have lost only its ack), or the purge after a failed state failed:
//     the stream message may be stored, and then its body object is kept
//     with it. Such a message has no state; the first attempt after
//     commitGrace (5 s) makes it from the envelope and delivers it like any
//     other. The client, told 4xx, may send it again: a second copy, which
//     contract 1 (at-least-once) allows.
//
// Bounces and notices have ids derived from the message and what they
// report, so one queued again (an attempt redone because its state could
// not be saved, a commit retried) is de-duplicated by JetStream within its
// window (10 min) instead of reaching the sender twice.
// All nodes pull from one durable consumer (explicit ack, unlimited
// deliveries). An attempt claims the state (node name), signals progress
// every AckWait/3 while the Handler works, settles like the local queue,
// then acks the stream message (done: the stream drops it, and the state
// and object are deleted) or naks it with the wait before the next attempt.
// A node that dies mid-attempt stops signalling; JetStream redelivers the
// message to another node after AckWait (at-least-once, contract 1). The
// state records which node and which delivery claimed it: an attempt that
// finishes after a redelivery claimed its message drops its result rather
// than write it over the newer one.
//
// When the ack of a message done fails, its state is kept as a done marker
// (body kept): its redelivery is acked and cleaned up, never attempted
// again. A body object found missing at an attempt is damage (contract 7):
// logged once, the attempt counted as a temporary failure of every
// recipient with that reason (shown by queue list/show), retried on the
// schedule and bounced (5.4.7) past MaxLifetime. Reading a body has a
// deadline (10 s plus 1 s per MiB), and progress is signalled meanwhile.
//
// The stream's message count (MaxMessages, Len) is one request at a time,
// bounded by 2 s, its answer or error cached for 500 ms: without quorum
// every new session gets its 4xx within that bound.
//
// A stream message cannot be made due earlier than its nak delay, so
// Release and Retry publish it again with the next generation (Nats-Msg-Id
// <id>.<gen>) and purge the older ones of its subject; an attempt on a
// message whose generation is below the state's acks it unattempted. When
// the state is gone after such a publish (the message was done or dropped
// meanwhile), the action purges the new generation too.
package jsq
