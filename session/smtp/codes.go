package smtp

import (
	"strconv"

	"gomta/session/reply"
)

// Every fixed reply of the server is named here once, from session/reply's
// codes (each named there with the RFC that defines it). Handlers use these
// names only; replies that carry a host name or an argument are built by the
// functions below them.
var (
	replyOK          = &Reply{Code: reply.CodeOK, Enhanced: reply.EnhOK, Text: "OK"}
	replySenderOK    = &Reply{Code: reply.CodeOK, Enhanced: reply.EnhSenderOK, Text: "sender OK"}
	replyRcptOK      = &Reply{Code: reply.CodeOK, Enhanced: reply.EnhRcptOK, Text: "recipient OK"}
	replyVrfy        = &Reply{Code: reply.CodeCannotVerify, Enhanced: reply.EnhRcptOK, Text: "cannot VRFY user, but will accept message and attempt delivery"}
	replyHelp        = &Reply{Code: reply.CodeHelp, Enhanced: reply.EnhOK, Text: "commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT"}
	replyStartData   = &Reply{Code: reply.CodeStartInput, Text: "end data with <CR><LF>.<CR><LF>"}
	replyLocalError  = &Reply{Code: reply.CodeLocalError, Enhanced: reply.EnhTempSystem, Text: "local error in processing, try again later"}
	replyPanic       = &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhTempSystem, Text: "internal error, closing connection"}
	replyTooManyErrs = &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhPolicyTemp, Text: "too many errors, closing connection"}
	replyTooMany     = &Reply{Code: reply.CodeInsufficient, Enhanced: reply.EnhTooManyRcpts, Text: "too many recipients"}
	replyTooManyConn = &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhPolicyTemp, Text: "too many connections"}
	replyLockedOut   = &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhPolicyTemp, Text: "too many failed logins"}

	// STARTTLS (RFC 3207 §4).
	replyTLSReady    = &Reply{Code: reply.CodeReady, Enhanced: reply.EnhOK, Text: "Ready to start TLS"}
	replyTLSNotAvail = &Reply{Code: reply.CodeTLSNotAvail, Enhanced: reply.EnhPolicyTemp, Text: "TLS not available"}
	replyTLSActive   = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "TLS already active"}
	replyTLSInTx     = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "STARTTLS not allowed during a mail transaction"}

	// AUTH (RFC 4954 §4, §6; RFC 4616 PLAIN).
	replyAuthOK       = &Reply{Code: reply.CodeAuthOK, Enhanced: reply.EnhAuthOK, Text: "authentication successful"}
	replyAuthFailed   = &Reply{Code: reply.CodeAuthFailed, Enhanced: reply.EnhBadCreds, Text: "authentication credentials invalid"}
	replyAuthCancel   = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhCancelled, Text: "authentication cancelled"}
	replyAuthBase64   = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhSyntax, Text: "invalid base64 data"}
	replyAuthMalform  = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhSyntax, Text: "malformed authentication response"}
	replyAuthMech     = &Reply{Code: reply.CodeParamNotImpl, Enhanced: reply.EnhBadArgs, Text: "unrecognized authentication mechanism"}
	replyAuthTwice    = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "already authenticated"}
	replyAuthInTx     = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "AUTH not allowed during a mail transaction"}
	replyEncryptReq   = &Reply{Code: reply.CodeEncryptReq, Enhanced: reply.EnhEncryptReq, Text: "encryption required for requested authentication mechanism"}
	replyAuthPlainGo  = &Reply{Code: reply.CodeAuthContinue}                       // RFC 4616: empty challenge
	replyAuthUsername = &Reply{Code: reply.CodeAuthContinue, Text: "VXNlcm5hbWU6"} // LOGIN: base64 "Username:"
	replyAuthPassword = &Reply{Code: reply.CodeAuthContinue, Text: "UGFzc3dvcmQ6"} // LOGIN: base64 "Password:"

	// Wrong order (RFC 5321 §4.1.4).
	replyNeedHelo   = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "send HELO or EHLO first"}
	replyNestedMail = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "nested MAIL command"}
	replyNeedMail   = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "need MAIL before RCPT"}
	replyNeedRcpt   = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "need RCPT before DATA"}

	// BDAT (RFC 3030 §2, §4.2). Between the chunks of a message only BDAT,
	// RSET, QUIT and commands that touch no transaction may come; DATA may not
	// be mixed with BDAT in one transaction. A BDAT with no readable size ends
	// the session: where its chunk ends is unknown.
	replyBdatNeedRcpt = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "need RCPT before BDAT"}
	replyInChunks     = &Reply{Code: reply.CodeBadSequence, Enhanced: reply.EnhInvalidCmd, Text: "only BDAT, RSET or QUIT may follow a BDAT chunk that is not LAST"}
	replyBadBdat      = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadArgs, Text: "syntax: BDAT <size> [LAST]; closing connection"}

	// Syntax.
	replyUnknownCmd  = &Reply{Code: reply.CodeSyntax, Enhanced: reply.EnhSyntax, Text: "command not recognized"}
	replyLineTooLong = &Reply{Code: reply.CodeSyntax, Enhanced: reply.EnhSyntax, Text: "line too long"}
	replyNotImpl     = &Reply{Code: reply.CodeNotImpl, Enhanced: reply.EnhInvalidCmd, Text: "command not implemented"}
	replyNeedDomain  = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadArgs, Text: "HELO/EHLO requires a domain or address literal"}
	replyNeedArg     = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadArgs, Text: "argument required"}
	replyNoArgs      = &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadArgs, Text: "no arguments allowed"}

	// A UTF-8 address in a transaction that did not declare SMTPUTF8
	// (RFC 6531 §3.5: 553 with X.6.7).
	replyNonASCIISender = &Reply{Code: reply.CodeNameNotAllow, Enhanced: reply.EnhNonASCII, Text: "non-ASCII addresses not permitted for that sender without SMTPUTF8"}
	replyNonASCIIRcpt   = &Reply{Code: reply.CodeNameNotAllow, Enhanced: reply.EnhNonASCII, Text: "non-ASCII addresses not permitted for that recipient without SMTPUTF8"}

	// Message size (RFC 1870 §6 uses 552 for both the declared and the actual size).
	replySizeExceeded = &Reply{Code: reply.CodeTooBig, Enhanced: reply.EnhTooBig, Text: "message size exceeds fixed maximum message size"}

	// DATA content faults. A bare CR or LF is refused with a permanent reply
	// because RFC 5321 §2.3.8 allows CR and LF only as the CRLF pair, and a
	// server that guessed at line ends could be tricked into seeing an end of
	// data that the client's side never meant (SMTP smuggling).
	replyBareEOL = &Reply{Code: reply.CodeRejected, Enhanced: reply.EnhSyntax, Text: "bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"}
	// A NUL octet is refused too: no message text may hold one (RFC 5322
	// §2.3; RFC 6152 §3 for 8BITMIME), and an MTA further on that strips NULs
	// would turn CRLF NUL "." CRLF into an end of data (SMTP smuggling).
	replyNUL = &Reply{Code: reply.CodeRejected, Enhanced: reply.EnhSyntax, Text: "NUL octet in message (RFC 5322 section 2.3)"}
	// A text line over 1000 octets (RFC 5321 §4.5.3.1.6) is refused with
	// "500 line too long", the example reply of RFC 5321 §4.5.3.1.10, rather
	// than cut or folded, which would change the message.
	replyDataLineTooLong = &Reply{Code: reply.CodeSyntax, Enhanced: reply.EnhSyntax, Text: "message line too long (at most 1000 octets including CRLF)"}
	// More Received fields than Config.MaxReceived: the message is going
	// round in a loop (RFC 5321 §6.3).
	replyLoop = &Reply{Code: reply.CodeTxFailed, Enhanced: reply.EnhLoop, Text: "too many Received header fields: mail loop detected"}

	// Input pipelined after a command that must end a group (RFC 2920 §3.1),
	// as Postfix's smtpd_forbid_unauth_pipelining and Exim's
	// smtp_enforce_sync answer it; the session is closed after it.
	replyPipelining = &Reply{Code: reply.CodeTxFailed, Enhanced: reply.EnhProtocol, Text: "protocol synchronization error: input sent before the reply (RFC 2920 section 3.1)"}
)

func replyGreeting(host string) *Reply {
	return &Reply{Code: reply.CodeReady, Text: host + " ESMTP gomta"}
}

func replyBye(host string) *Reply {
	return &Reply{Code: reply.CodeClosing, Enhanced: reply.EnhOK, Text: host + " closing connection"}
}

func replyShutdown(host string) *Reply {
	return &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhNotAccepting, Text: host + " shutting down"}
}

func replyIdleTimeout(host string) *Reply {
	return &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhTimeout, Text: host + " timeout, closing connection"}
}

func replySessionTimeout(host string) *Reply {
	return &Reply{Code: reply.CodeUnavailable, Enhanced: reply.EnhTimeout, Text: host + " session time limit exceeded, closing connection"}
}

func replyQueued(id string) *Reply {
	return &Reply{Code: reply.CodeOK, Enhanced: reply.EnhOK, Text: "OK queued as " + id}
}

// replyChunkOK acknowledges a BDAT chunk that is not the last (RFC 3030 §2).
func replyChunkOK(size int64) *Reply {
	return &Reply{Code: reply.CodeOK, Enhanced: reply.EnhOK, Text: strconv.FormatInt(size, 10) + " octets received"}
}

func replyBadSender(detail string) *Reply {
	return &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadFromSyntax, Text: "bad sender address syntax: " + detail}
}

func replyBadRcpt(detail string) *Reply {
	return &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadRcptSyntax, Text: "bad recipient address syntax: " + detail}
}

func replyBadSyntax(detail string) *Reply {
	return &Reply{Code: reply.CodeSyntaxParam, Enhanced: reply.EnhBadArgs, Text: "syntax error: " + detail}
}

func replyUnknownParam(keyword string) *Reply {
	return &Reply{Code: reply.CodeBadParams, Enhanced: reply.EnhBadArgs, Text: "parameter not recognized: " + keyword}
}
