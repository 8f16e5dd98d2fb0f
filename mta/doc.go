// Package mta is the wiring that turns a config (gomta/mta/config) into
// running mail hosts: listeners, queue, delivery workers and mailbox actors,
// handed to the caller's run group as actors. It also holds what a host
// decides with its config: the relay policy (who may send what, ARCHITECTURE.md;
// postmaster mail, RFC 5321 §4.5.1) that the SMTP sessions ask through their
// Backend, the canonical form in which recipients are queued, once per
// mailbox, the password checks of SMTP AUTH and POP3, the connection limits,
// and the TLS certificate (loaded, or minted self-signed at start).
package mta
