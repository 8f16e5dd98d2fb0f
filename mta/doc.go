// Package mta is the wiring that turns a config (gomta/mta/config) into
// running mail hosts: listeners, queue, delivery workers and mailbox actors,
// handed to the caller's run group as actors. It also holds what a host
// decides with its config: the relay policy (who may send what, ARCHITECTURE.md;
// postmaster mail, RFC 5321 §4.5.1) that the SMTP sessions ask through their
// Backend, the canonical form in which recipients are queued, once per
// mailbox, the password checks of SMTP AUTH and POP3, the connection limits,
// and the TLS certificate (loaded, or minted self-signed at start).
//
// Reload (Hosts.Reload, on SIGHUP and from the control socket) re-reads the
// config files and swaps in the new config without dropping a session.
// Invariants: what a host decides with its config is one immutable value
// (hostConfig) behind an atomic pointer, loaded once per decision, so that a
// decision sees the old config or the new, never a mix; the SMTP and POP3
// servers, the limiter, the relay and the certificate are likewise swapped
// whole, and a session keeps the server config it started with. A reload is
// all or nothing: the new files are validated and everything that can fail
// (certificate files, new mailboxes) is done before anything is swapped. What
// a running process cannot change (listeners, data directory, queue sizes,
// the set of hosts) is reported and keeps its running value.
package mta
