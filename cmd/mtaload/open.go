package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// openConfig is the open-loop flags of the smtp mode.
type openConfig struct {
	on    bool
	ramp  string
	step  time.Duration
	slo   time.Duration
	html  string
	sched schedule // built by check
}

func (o *openConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.on, "open", false, "open loop: send each message at its intended time (-rate steps or -ramp), whatever the replies; latency is corrected for coordinated omission")
	fs.StringVar(&o.ramp, "ramp", "", "with -open: a linear arrival rate `FROM:TO` msg/s over -step, reported in ten segments")
	fs.DurationVar(&o.step, "step", 20*time.Second, "with -open: length of each -rate step (or of the whole -ramp)")
	fs.DurationVar(&o.slo, "slo", 100*time.Millisecond, "with -open: a step is sustained when its p99 corrected latency is below this and it had no errors")
	fs.StringVar(&o.html, "html", "", "with -open: write a self-contained HTML report with charts to `FILE`")
}

// rampSegments is how many reporting segments a -ramp is cut into.
const rampSegments = 10

// check validates the open-loop flags (with the common ones) and builds the
// schedule.
func (o *openConfig) check(c *common, rates rateList) error {
	var errs []error
	if c.duration != 0 {
		errs = append(errs, errors.New("-duration does not apply to -open: the schedule (-rate steps × -step, or -ramp) sets the length"))
	}
	if o.step <= 0 || o.slo <= 0 {
		errs = append(errs, errors.New("-step and -slo must be positive"))
	}
	switch {
	case o.ramp != "" && len(rates) > 0:
		errs = append(errs, errors.New("-open takes -rate steps or a -ramp, not both"))
	case o.ramp != "":
		from, to, err := parseRamp(o.ramp)
		if err != nil {
			errs = append(errs, err)
			break
		}
		o.sched = rampSchedule(from, to, o.step, rampSegments)
	case len(rates) == 0:
		errs = append(errs, errors.New("-open needs -rate steps (e.g. -rate 250,500,1000) or -ramp FROM:TO"))
	default:
		for _, r := range rates {
			if r <= 0 {
				errs = append(errs, errors.New("-open: every -rate step must be positive"))
				break
			}
		}
		o.sched = stepSchedule(rates, o.step)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if total := o.sched.length(); c.timeout <= total {
		return fmt.Errorf("-timeout %v must exceed the schedule's %v (the backlog needs time to drain)", c.timeout, total)
	}
	return nil
}

// checkClosed refuses the open-loop flags without -open.
func (o *openConfig) checkClosed(rates rateList) error {
	var errs []error
	if len(rates) > 1 {
		errs = append(errs, errors.New("-rate takes one value without -open"))
	}
	if len(rates) == 1 && rates[0] < 0 {
		errs = append(errs, errors.New("-rate must not be negative"))
	}
	if o.ramp != "" || o.html != "" {
		errs = append(errs, errors.New("-ramp and -html need -open"))
	}
	return errors.Join(errs...)
}

func parseRamp(s string) (from, to float64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		from, err = strconv.ParseFloat(a, 64)
	}
	if ok && err == nil {
		to, err = strconv.ParseFloat(b, 64)
	}
	if !ok || err != nil || from <= 0 || to <= 0 || math.IsInf(from+to, 0) {
		return 0, 0, fmt.Errorf("-ramp %q: want FROM:TO, two positive rates in msg/s", s)
	}
	return from, to, nil
}

// rateList is -rate: one value, or with -open a comma-separated list.
type rateList []float64

func (r *rateList) String() string {
	if r == nil {
		return ""
	}
	parts := make([]string, len(*r))
	for i, v := range *r {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (r *rateList) Set(s string) error {
	var out rateList
	for p := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bad rate %q", p)
		}
		out = append(out, v)
	}
	*r = out
	return nil
}

// segment is one step of the schedule: the arrival rate goes linearly from
// from to to (msg/s) over dur; a step of a fixed rate has from == to.
type segment struct {
	from, to float64
	dur      time.Duration
	offset   time.Duration // from the start of the run
	count    int64         // messages it schedules
}

// schedule is the run's arrival plan, step after step.
type schedule []segment

func stepSchedule(rates []float64, step time.Duration) schedule {
	s := make(schedule, 0, len(rates))
	for _, r := range rates {
		s = s.add(r, r, step)
	}
	return s
}

func rampSchedule(from, to float64, total time.Duration, n int) schedule {
	s := make(schedule, 0, n)
	seg := total / time.Duration(n)
	for i := range n {
		a := from + (to-from)*float64(i)/float64(n)
		b := from + (to-from)*float64(i+1)/float64(n)
		s = s.add(a, b, seg)
	}
	return s
}

func (s schedule) add(from, to float64, dur time.Duration) schedule {
	g := segment{from: from, to: to, dur: dur, offset: s.length()}
	g.count = int64(math.Floor((from+to)/2*dur.Seconds() + 1e-9))
	return append(s, g)
}

// length is the schedule's total duration.
func (s schedule) length() time.Duration {
	if len(s) == 0 {
		return 0
	}
	last := s[len(s)-1]
	return last.offset + last.dur
}

// total is the count of messages the schedule sends.
func (s schedule) total() int64 {
	var n int64
	for _, g := range s {
		n += g.count
	}
	return n
}

// rate is the segment's mean arrival rate, which names it in reports.
func (g segment) rate() float64 { return (g.from + g.to) / 2 }

// at returns the intended send time of message k (from 0) of the segment,
// from the segment's start: the t where the arrivals so far,
// N(t) = a·t + (b−a)·t²/(2T), reach k.
func (g segment) at(k int64) time.Duration {
	T := g.dur.Seconds()
	a, b := g.from, g.to
	var t float64
	if slope := (b - a) / T; math.Abs(slope) < 1e-12 {
		t = float64(k) / a
	} else {
		t = (-a + math.Sqrt(a*a+2*slope*float64(k))) / slope
	}
	return time.Duration(t * float64(time.Second))
}
