package queue

import (
	"slices"
	"time"
)

// statusExpired is the status of a recipient the queue gave up on while it
// was still failing temporarily: RFC 3463 §3.5 X.4.7, delivery time expired.
const statusExpired = "5.4.7"

// schedule is a Queue's retry policy (Options): how long to wait after a
// failed attempt, which attempt is the last, and when a message is old
// enough for a delay notice. It is read-only after Open.
type schedule struct {
	waits    []time.Duration // explicit waits (Options.Retry); when set, base and max are unused
	base     time.Duration   // exponential backoff: first wait; 0 = none
	max      time.Duration   // exponential backoff: longest wait
	lifetime time.Duration   // 0 = retried for ever
	warn     time.Duration   // delay notice age; 0 = none
}

func newSchedule(opt Options) schedule {
	s := schedule{waits: slices.Clone(opt.Retry), base: opt.RetryBase, max: opt.RetryMax,
		lifetime: max(opt.MaxLifetime, 0), warn: max(opt.DelayWarning, 0)}
	if len(s.waits) > 0 || s.base < 0 {
		s.base = 0
	}
	s.max = max(s.max, s.base)
	return s
}

// wait is the delay before attempt n+1 after attempt n (n ≥ 1) failed: the
// explicit list's n-th wait (its last one past its end), or base doubled
// n-1 times and capped at max. With no schedule (only a bounce is ever
// retried then) it is a minute.
func (s schedule) wait(n int) time.Duration {
	switch {
	case len(s.waits) > 0:
		return s.waits[min(max(n-1, 0), len(s.waits)-1)]
	case s.base > 0:
		w := s.base
		for i := 1; i < n && w < s.max; i++ {
			if w > s.max/2 { // doubling would pass max (or overflow)
				return s.max
			}
			w *= 2
		}
		return min(w, s.max)
	default:
		return time.Minute
	}
}

// final reports whether attempt n of a message received at recv, made at
// now, is the last one: the lifetime is over, or the explicit list is
// exhausted, or there is no schedule at all.
func (s schedule) final(recv time.Time, n int, now time.Time) bool {
	if s.lifetime > 0 && !now.Before(recv.Add(s.lifetime)) {
		return true
	}
	if len(s.waits) > 0 {
		return n > len(s.waits)
	}
	return s.base <= 0
}

// expires is when a message received at recv stops being retried (its
// last attempt is due then at the latest); zero when never.
func (s schedule) expires(recv time.Time) time.Time {
	if s.lifetime <= 0 {
		return time.Time{}
	}
	return recv.Add(s.lifetime)
}

// next is when the attempt after attempt n is due, n having failed at now:
// after wait(n), but no later than the end of the lifetime, so that the
// last attempt (and the 5.4.7 bounce) comes when the lifetime ends.
func (s schedule) next(recv time.Time, n int, now time.Time) time.Time {
	t := now.Add(s.wait(n))
	if e := s.expires(recv); !e.IsZero() && e.Before(t) {
		t = e
	}
	return t
}

// warnDue reports whether a message received at recv is old enough at now
// for its delay notice.
func (s schedule) warnDue(recv, now time.Time) bool {
	return s.warn > 0 && !now.Before(recv.Add(s.warn))
}

// Schedule is the retry policy of Options for a spool kept elsewhere than
// this package's (queue/jsq), so that both retry, give up and warn alike.
type Schedule struct{ s schedule }

// NewSchedule returns the retry policy of opt (Retry, RetryBase, RetryMax,
// MaxLifetime, DelayWarning); other fields are unused.
func NewSchedule(opt Options) Schedule { return Schedule{newSchedule(opt)} }

// Wait is the delay before attempt n+1 after attempt n failed.
func (s Schedule) Wait(n int) time.Duration { return s.s.wait(n) }

// Final reports whether attempt n of a message received at recv, made at
// now, is the last one.
func (s Schedule) Final(recv time.Time, n int, now time.Time) bool { return s.s.final(recv, n, now) }

// Expires is when a message received at recv stops being retried; zero when never.
func (s Schedule) Expires(recv time.Time) time.Time { return s.s.expires(recv) }

// Next is when the attempt after attempt n (failed at now) is due.
func (s Schedule) Next(recv time.Time, n int, now time.Time) time.Time { return s.s.next(recv, n, now) }

// WarnDue reports whether a message received at recv is old enough at now
// for its delay notice.
func (s Schedule) WarnDue(recv, now time.Time) bool { return s.s.warnDue(recv, now) }

// StatusExpired is the RFC 3463 status of a recipient given up on while it
// was still failing temporarily (X.4.7, delivery time expired).
const StatusExpired = statusExpired
