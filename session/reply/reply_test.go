package reply

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Code: CodeOK}, "250"},
		{Reply{Code: CodeOK, Enhanced: EnhOK, Text: "OK"}, "250 2.0.0 OK"},
		{Reply{Code: CodeStartInput, Text: "go ahead"}, "354 go ahead"},
		{Reply{Code: CodeOK, Text: "mx.test\nPIPELINING\nSIZE 100"}, "250 mx.test / PIPELINING / SIZE 100"},
	}
	for _, tt := range tests {
		if got := tt.r.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code            int
		temporary, perm bool
	}{
		{CodeOK, false, false},
		{CodeStartInput, false, false},
		{CodeUnavailable, true, false},
		{CodeInsufficient, true, false},
		{CodeSyntax, false, true},
		{CodeRejected, false, true},
		{CodeBadParams, false, true},
	}
	for _, tt := range tests {
		r := &Reply{Code: tt.code}
		if r.Temporary() != tt.temporary || r.Permanent() != tt.perm {
			t.Errorf("%d: Temporary %v Permanent %v, want %v %v", tt.code, r.Temporary(), r.Permanent(), tt.temporary, tt.perm)
		}
	}
}

// verdict is a local error that knows whether it is final.
type verdict bool

func (v verdict) Error() string   { return fmt.Sprintf("verdict %v", bool(v)) }
func (v verdict) Permanent() bool { return bool(v) }

func TestTemporary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&Reply{Code: CodeRejected, Enhanced: EnhNoSuchUser}, false},
		{&Reply{Code: CodeLocalError}, true},
		{fmt.Errorf("relay: %w", &Reply{Code: CodeTxFailed}), false},
		{fmt.Errorf("relay: %w", &Reply{Code: CodeUnavailable}), true},
		{verdict(true), false},
		{fmt.Errorf("wrapped: %w", verdict(false)), true},
		{errors.New("connection reset"), true},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
