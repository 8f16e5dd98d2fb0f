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
//	                          when it fits under the server's max payload, else empty
//	                          and the body is the object <id>
//	objects GOMTA_QB_<token>  bodies too big to be a payload, streamed in and out
//	KV GOMTA_QS_<token>       the mutable state of each message, keyed by id
//	                          (pending, failed and succeeded recipients, attempts,
//	                          history, held, delay warned, node holding an attempt)
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
// All nodes pull from one durable consumer (explicit ack, unlimited
// deliveries). An attempt claims the state (node name), signals progress
// every AckWait/3 while the Handler works, settles like the local queue,
// then acks the stream message (done: the stream drops it, and the state
// and object are deleted) or naks it with the wait before the next attempt.
// A node that dies mid-attempt stops signalling; JetStream redelivers the
// message to another node after AckWait (at-least-once, contract 1).
//
// A stream message cannot be made due earlier than its nak delay, so
// Release and Retry publish it again with the next generation (Nats-Msg-Id
// <id>.<gen>) and purge the older ones of its subject; an attempt on a
// message whose generation is below the state's acks it unattempted.
package jsq
