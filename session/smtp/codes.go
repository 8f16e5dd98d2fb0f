package smtp

// Every reply code, enhanced status code and fixed reply of the server is named
// here once, with the RFC that defines it. Handlers use these names only.

// Basic reply codes (RFC 5321 §4.2.2, §4.2.3).
const (
	codeHelp         = 214 // RFC 5321 §4.2.2: help message
	codeReady        = 220 // RFC 5321 §4.2.2: <domain> Service ready
	codeClosing      = 221 // RFC 5321 §4.2.2: <domain> Service closing transmission channel
	codeAuthOK       = 235 // RFC 4954 §6: authentication successful
	codeOK           = 250 // RFC 5321 §4.2.2: requested mail action okay, completed
	codeCannotVerify = 252 // RFC 5321 §3.5.3: cannot VRFY user, but will accept message
	codeAuthContinue = 334 // RFC 4954 §4: server challenge, base64 (empty for PLAIN)
	codeStartInput   = 354 // RFC 5321 §4.2.2: start mail input; end with <CRLF>.<CRLF>
	codeUnavailable  = 421 // RFC 5321 §4.2.2: service not available, closing transmission channel
	codeLocalError   = 451 // RFC 5321 §4.2.2: requested action aborted: local error in processing
	codeInsufficient = 452 // RFC 5321 §4.5.3.1.10: too many recipients (insufficient system storage)
	codeTLSNotAvail  = 454 // RFC 3207 §4: TLS not available due to temporary reason
	codeSyntax       = 500 // RFC 5321 §4.2.2: syntax error, command unrecognized (also "line too long", §4.5.3.1.10)
	codeSyntaxParam  = 501 // RFC 5321 §4.2.2: syntax error in parameters or arguments (also "path too long")
	codeNotImpl      = 502 // RFC 5321 §4.2.2: command not implemented
	codeBadSequence  = 503 // RFC 5321 §4.2.2: bad sequence of commands
	codeParamNotImpl = 504 // RFC 5321 §4.2.2, RFC 4954 §4: command parameter (SASL mechanism) not implemented
	codeAuthFailed   = 535 // RFC 4954 §6: authentication credentials invalid
	codeEncryptReq   = 538 // RFC 4954 §6: encryption required for requested authentication mechanism
	codeRejected     = 550 // RFC 5321 §4.2.2: requested action not taken (policy)
	codeTooBig       = 552 // RFC 5321 §4.2.2, §4.5.3.1.10: exceeded storage allocation ("too much mail data")
	codeTxFailed     = 554 // RFC 5321 §4.2.2: transaction failed
	codeBadParams    = 555 // RFC 5321 §4.1.1.11: MAIL FROM/RCPT TO parameters not recognized or not implemented
)

// Enhanced status codes (RFC 3463 §3, announced by ENHANCEDSTATUSCODES, RFC 2034).
// RFC 3463 defines the classes 2, 4 and 5 only, so the intermediate 354 carries
// none; RFC 2034 §3 exempts the greeting and the HELO/EHLO replies.
const (
	enhOK            = "2.0.0"  // RFC 3463 §3.1: other undefined status (success)
	enhAuthOK        = "2.7.0"  // RFC 4954 §6: authentication succeeded
	enhCancelled     = "5.0.0"  // RFC 4954 §4: the client cancelled the exchange with "*"
	enhSenderOK      = "2.1.0"  // RFC 3463 §3.2 X.1.0: other address status (sender accepted)
	enhRcptOK        = "2.1.5"  // RFC 3463 §3.2 X.1.5: destination address valid
	enhBadRcptSyntax = "5.1.3"  // RFC 3463 §3.2 X.1.3: bad destination mailbox address syntax
	enhBadFromSyntax = "5.1.7"  // RFC 3463 §3.2 X.1.7: bad sender's mailbox address syntax
	enhTempSystem    = "4.3.0"  // RFC 3463 §3.4 X.3.0: other or undefined mail system status
	enhNotAccepting  = "4.3.2"  // RFC 3463 §3.4 X.3.2: system not accepting network messages
	enhTooBig        = "5.3.4"  // RFC 3463 §3.4 X.3.4: message too big for system
	enhTimeout       = "4.4.2"  // RFC 3463 §3.5 X.4.2: bad connection (idle or DATA timeout)
	enhLoop          = "5.4.6"  // RFC 3463 §3.5 X.4.6: routing loop detected
	enhProtocol      = "5.5.0"  // RFC 3463 §3.6 X.5.0: other or undefined protocol status
	enhInvalidCmd    = "5.5.1"  // RFC 3463 §3.6 X.5.1: invalid command (wrong order, not implemented)
	enhSyntax        = "5.5.2"  // RFC 3463 §3.6 X.5.2: syntax error
	enhBadArgs       = "5.5.4"  // RFC 3463 §3.6 X.5.4: invalid command arguments
	enhTooManyRcpts  = "4.5.3"  // RFC 3463 §3.6 X.5.3: too many recipients
	enhPolicyTemp    = "4.7.0"  // RFC 3463 §3.8 X.7.0: other or undefined security status
	enhBadCreds      = "5.7.8"  // RFC 4954 §6: authentication credentials invalid
	enhEncryptReq    = "5.7.11" // RFC 5248 / RFC 4954 §6: encryption required for requested authentication mechanism
)

// Fixed replies. Replies that carry a host name or an argument are built by the
// functions below them, still from the names above.
var (
	replyOK          = &Reply{Code: codeOK, Enhanced: enhOK, Text: "OK"}
	replySenderOK    = &Reply{Code: codeOK, Enhanced: enhSenderOK, Text: "sender OK"}
	replyRcptOK      = &Reply{Code: codeOK, Enhanced: enhRcptOK, Text: "recipient OK"}
	replyVrfy        = &Reply{Code: codeCannotVerify, Enhanced: enhRcptOK, Text: "cannot VRFY user, but will accept message and attempt delivery"}
	replyHelp        = &Reply{Code: codeHelp, Enhanced: enhOK, Text: "commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT"}
	replyStartData   = &Reply{Code: codeStartInput, Text: "end data with <CR><LF>.<CR><LF>"}
	replyLocalError  = &Reply{Code: codeLocalError, Enhanced: enhTempSystem, Text: "local error in processing, try again later"}
	replyPanic       = &Reply{Code: codeUnavailable, Enhanced: enhTempSystem, Text: "internal error, closing connection"}
	replyTooManyErrs = &Reply{Code: codeUnavailable, Enhanced: enhPolicyTemp, Text: "too many errors, closing connection"}
	replyTooMany     = &Reply{Code: codeInsufficient, Enhanced: enhTooManyRcpts, Text: "too many recipients"}
	replyTooManyConn = &Reply{Code: codeUnavailable, Enhanced: enhPolicyTemp, Text: "too many connections"}
	replyLockedOut   = &Reply{Code: codeUnavailable, Enhanced: enhPolicyTemp, Text: "too many failed logins"}

	// STARTTLS (RFC 3207 §4).
	replyTLSReady    = &Reply{Code: codeReady, Enhanced: enhOK, Text: "Ready to start TLS"}
	replyTLSNotAvail = &Reply{Code: codeTLSNotAvail, Enhanced: enhPolicyTemp, Text: "TLS not available"}
	replyTLSActive   = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "TLS already active"}
	replyTLSInTx     = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "STARTTLS not allowed during a mail transaction"}

	// AUTH (RFC 4954 §4, §6; RFC 4616 PLAIN).
	replyAuthOK       = &Reply{Code: codeAuthOK, Enhanced: enhAuthOK, Text: "authentication successful"}
	replyAuthFailed   = &Reply{Code: codeAuthFailed, Enhanced: enhBadCreds, Text: "authentication credentials invalid"}
	replyAuthCancel   = &Reply{Code: codeSyntaxParam, Enhanced: enhCancelled, Text: "authentication cancelled"}
	replyAuthBase64   = &Reply{Code: codeSyntaxParam, Enhanced: enhSyntax, Text: "invalid base64 data"}
	replyAuthMalform  = &Reply{Code: codeSyntaxParam, Enhanced: enhSyntax, Text: "malformed authentication response"}
	replyAuthMech     = &Reply{Code: codeParamNotImpl, Enhanced: enhBadArgs, Text: "unrecognized authentication mechanism"}
	replyAuthTwice    = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "already authenticated"}
	replyAuthInTx     = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "AUTH not allowed during a mail transaction"}
	replyEncryptReq   = &Reply{Code: codeEncryptReq, Enhanced: enhEncryptReq, Text: "encryption required for requested authentication mechanism"}
	replyAuthPlainGo  = &Reply{Code: codeAuthContinue}                       // RFC 4616: empty challenge
	replyAuthUsername = &Reply{Code: codeAuthContinue, Text: "VXNlcm5hbWU6"} // LOGIN: base64 "Username:"
	replyAuthPassword = &Reply{Code: codeAuthContinue, Text: "UGFzc3dvcmQ6"} // LOGIN: base64 "Password:"

	// Wrong order (RFC 5321 §4.1.4).
	replyNeedHelo   = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "send HELO or EHLO first"}
	replyNestedMail = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "nested MAIL command"}
	replyNeedMail   = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "need MAIL before RCPT"}
	replyNeedRcpt   = &Reply{Code: codeBadSequence, Enhanced: enhInvalidCmd, Text: "need RCPT before DATA"}

	// Syntax.
	replyUnknownCmd  = &Reply{Code: codeSyntax, Enhanced: enhSyntax, Text: "command not recognized"}
	replyLineTooLong = &Reply{Code: codeSyntax, Enhanced: enhSyntax, Text: "line too long"}
	replyNotImpl     = &Reply{Code: codeNotImpl, Enhanced: enhInvalidCmd, Text: "command not implemented"}
	replyNeedDomain  = &Reply{Code: codeSyntaxParam, Enhanced: enhBadArgs, Text: "HELO/EHLO requires a domain or address literal"}
	replyNeedArg     = &Reply{Code: codeSyntaxParam, Enhanced: enhBadArgs, Text: "argument required"}
	replyNoArgs      = &Reply{Code: codeSyntaxParam, Enhanced: enhBadArgs, Text: "no arguments allowed"}

	// Message size (RFC 1870 §6 uses 552 for both the declared and the actual size).
	replySizeExceeded = &Reply{Code: codeTooBig, Enhanced: enhTooBig, Text: "message size exceeds fixed maximum message size"}

	// DATA content faults. A bare CR or LF is refused with a permanent reply
	// because RFC 5321 §2.3.8 allows CR and LF only as the CRLF pair, and a
	// server that guessed at line ends could be tricked into seeing an end of
	// data that the client's side never meant (SMTP smuggling).
	replyBareEOL = &Reply{Code: codeRejected, Enhanced: enhSyntax, Text: "bare CR or LF in message; use CRLF line endings (RFC 5321 section 2.3.8)"}
	// A NUL octet is refused too: no message text may hold one (RFC 5322
	// §2.3; RFC 6152 §3 for 8BITMIME), and an MTA further on that strips NULs
	// would turn CRLF NUL "." CRLF into an end of data (SMTP smuggling).
	replyNUL = &Reply{Code: codeRejected, Enhanced: enhSyntax, Text: "NUL octet in message (RFC 5322 section 2.3)"}
	// A text line over 1000 octets (RFC 5321 §4.5.3.1.6) is refused with
	// "500 line too long", the example reply of RFC 5321 §4.5.3.1.10, rather
	// than cut or folded, which would change the message.
	replyDataLineTooLong = &Reply{Code: codeSyntax, Enhanced: enhSyntax, Text: "message line too long (at most 1000 octets including CRLF)"}
	// More Received fields than Config.MaxReceived: the message is going
	// round in a loop (RFC 5321 §6.3).
	replyLoop = &Reply{Code: codeTxFailed, Enhanced: enhLoop, Text: "too many Received header fields: mail loop detected"}

	// Input pipelined after a command that must end a group (RFC 2920 §3.1),
	// as Postfix's smtpd_forbid_unauth_pipelining and Exim's
	// smtp_enforce_sync answer it; the session is closed after it.
	replyPipelining = &Reply{Code: codeTxFailed, Enhanced: enhProtocol, Text: "protocol synchronization error: input sent before the reply (RFC 2920 section 3.1)"}
)

func replyGreeting(host string) *Reply {
	return &Reply{Code: codeReady, Text: host + " ESMTP gomta"}
}

func replyBye(host string) *Reply {
	return &Reply{Code: codeClosing, Enhanced: enhOK, Text: host + " closing connection"}
}

func replyShutdown(host string) *Reply {
	return &Reply{Code: codeUnavailable, Enhanced: enhNotAccepting, Text: host + " shutting down"}
}

func replyIdleTimeout(host string) *Reply {
	return &Reply{Code: codeUnavailable, Enhanced: enhTimeout, Text: host + " timeout, closing connection"}
}

func replySessionTimeout(host string) *Reply {
	return &Reply{Code: codeUnavailable, Enhanced: enhTimeout, Text: host + " session time limit exceeded, closing connection"}
}

func replyQueued(id string) *Reply {
	return &Reply{Code: codeOK, Enhanced: enhOK, Text: "OK queued as " + id}
}

func replyBadSender(detail string) *Reply {
	return &Reply{Code: codeSyntaxParam, Enhanced: enhBadFromSyntax, Text: "bad sender address syntax: " + detail}
}

func replyBadRcpt(detail string) *Reply {
	return &Reply{Code: codeSyntaxParam, Enhanced: enhBadRcptSyntax, Text: "bad recipient address syntax: " + detail}
}

func replyBadSyntax(detail string) *Reply {
	return &Reply{Code: codeSyntaxParam, Enhanced: enhBadArgs, Text: "syntax error: " + detail}
}

func replyUnknownParam(keyword string) *Reply {
	return &Reply{Code: codeBadParams, Enhanced: enhBadArgs, Text: "parameter not recognized: " + keyword}
}
