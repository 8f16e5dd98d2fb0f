package reply

// Basic reply codes (RFC 5321 §4.2.2, §4.2.3, and the extensions that add
// to them).
const (
	CodeHelp         = 214 // RFC 5321 §4.2.2: help message
	CodeReady        = 220 // RFC 5321 §4.2.2: <domain> Service ready
	CodeClosing      = 221 // RFC 5321 §4.2.2: <domain> Service closing transmission channel
	CodeAuthOK       = 235 // RFC 4954 §6: authentication successful
	CodeOK           = 250 // RFC 5321 §4.2.2: requested mail action okay, completed
	CodeCannotVerify = 252 // RFC 5321 §3.5.3: cannot VRFY user, but will accept message
	CodeAuthContinue = 334 // RFC 4954 §4: server challenge, base64 (empty for PLAIN)
	CodeStartInput   = 354 // RFC 5321 §4.2.2: start mail input; end with <CRLF>.<CRLF>
	CodeUnavailable  = 421 // RFC 5321 §4.2.2, §3.8: service not available, closing transmission channel
	CodeLocalError   = 451 // RFC 5321 §4.2.2: requested action aborted: local error in processing
	CodeInsufficient = 452 // RFC 5321 §4.2.2, §4.5.3.1.10: insufficient system storage (also too many recipients)
	CodeTLSNotAvail  = 454 // RFC 3207 §4: TLS not available due to temporary reason
	CodeSyntax       = 500 // RFC 5321 §4.2.2: syntax error, command unrecognized (also "line too long", §4.5.3.1.10)
	CodeSyntaxParam  = 501 // RFC 5321 §4.2.2: syntax error in parameters or arguments (also "path too long")
	CodeNotImpl      = 502 // RFC 5321 §4.2.2: command not implemented
	CodeBadSequence  = 503 // RFC 5321 §4.2.2: bad sequence of commands
	CodeParamNotImpl = 504 // RFC 5321 §4.2.2, RFC 4954 §4: command parameter (SASL mechanism) not implemented
	CodeAuthFailed   = 535 // RFC 4954 §6: authentication credentials invalid
	CodeEncryptReq   = 538 // RFC 4954 §6: encryption required for requested authentication mechanism
	CodeRejected     = 550 // RFC 5321 §4.2.2: requested action not taken (mailbox unavailable, policy)
	CodeTooBig       = 552 // RFC 5321 §4.2.2, §4.5.3.1.10: exceeded storage allocation ("too much mail data")
	CodeNameNotAllow = 553 // RFC 5321 §4.2.2: requested action not taken: mailbox name not allowed
	CodeTxFailed     = 554 // RFC 5321 §4.2.2: transaction failed
	CodeBadParams    = 555 // RFC 5321 §4.1.1.11: MAIL FROM/RCPT TO parameters not recognized or not implemented
)

// Enhanced status codes (RFC 3463 §3, announced by ENHANCEDSTATUSCODES, RFC
// 2034). RFC 3463 defines the classes 2, 4 and 5 only, so the intermediate
// 354 carries none; RFC 2034 §3 exempts the greeting and the HELO/EHLO
// replies.
const (
	EnhOK            = "2.0.0"  // RFC 3463 §3.1: other undefined status (success)
	EnhAuthOK        = "2.7.0"  // RFC 4954 §6: authentication succeeded
	EnhCancelled     = "5.0.0"  // RFC 4954 §4: the client cancelled the exchange with "*"
	EnhSenderOK      = "2.1.0"  // RFC 3463 §3.2 X.1.0: other address status (sender accepted)
	EnhRcptOK        = "2.1.5"  // RFC 3463 §3.2 X.1.5: destination address valid
	EnhBadAddress    = "5.1.0"  // RFC 3463 §3.2 X.1.0: other address status
	EnhNoSuchUser    = "5.1.1"  // RFC 3463 §3.2 X.1.1: bad destination mailbox address
	EnhBadRcptSyntax = "5.1.3"  // RFC 3463 §3.2 X.1.3: bad destination mailbox address syntax
	EnhBadFromSyntax = "5.1.7"  // RFC 3463 §3.2 X.1.7: bad sender's mailbox address syntax
	EnhTempSystem    = "4.3.0"  // RFC 3463 §3.4 X.3.0: other or undefined mail system status
	EnhSystemFull    = "4.3.1"  // RFC 3463 §3.4 X.3.1: mail system full
	EnhNotAccepting  = "4.3.2"  // RFC 3463 §3.4 X.3.2: system not accepting network messages
	EnhTooBig        = "5.3.4"  // RFC 3463 §3.4 X.3.4: message too big for system
	EnhNonASCII      = "5.6.7"  // RFC 6531 §3.5, RFC 5248: non-ASCII addresses not permitted (SMTPUTF8 not declared, or not offered by the next hop)
	EnhTimeout       = "4.4.2"  // RFC 3463 §3.5 X.4.2: bad connection (idle or DATA timeout)
	EnhLoop          = "5.4.6"  // RFC 3463 §3.5 X.4.6: routing loop detected
	EnhProtocol      = "5.5.0"  // RFC 3463 §3.6 X.5.0: other or undefined protocol status
	EnhInvalidCmd    = "5.5.1"  // RFC 3463 §3.6 X.5.1: invalid command (wrong order, not implemented)
	EnhSyntax        = "5.5.2"  // RFC 3463 §3.6 X.5.2: syntax error
	EnhBadArgs       = "5.5.4"  // RFC 3463 §3.6 X.5.4: invalid command arguments
	EnhTooManyRcpts  = "4.5.3"  // RFC 3463 §3.6 X.5.3: too many recipients
	EnhPolicyTemp    = "4.7.0"  // RFC 3463 §3.8 X.7.0: other or undefined security status
	EnhNotAuthorized = "5.7.1"  // RFC 3463 §3.8 X.7.1: delivery not authorized, message refused (relay denied, sender not owned)
	EnhBadCreds      = "5.7.8"  // RFC 4954 §6: authentication credentials invalid
	EnhEncryptReq    = "5.7.11" // RFC 5248 / RFC 4954 §6: encryption required for requested authentication mechanism
)
