package webhook

import (
	"sync"
	"time"
)

// breakerState is the state of a circuit.
type breakerState uint8

const (
	circuitClosed breakerState = iota
	circuitOpen
	circuitHalfOpen
)

// breakerOutcome is how a call ended, for its circuit.
type breakerOutcome uint8

const (
	breakerSuccess breakerOutcome = iota
	breakerFailure
	breakerNeutral // cancelled by the caller: says nothing of the upstream
)

// breakerTransition is a state change worth logging.
type breakerTransition uint8

const (
	breakerUnchanged breakerTransition = iota
	breakerOpened
	breakerReopened
	breakerClosed
)

// breaker is the circuit breaker of one upstream URL (see
// Webhooks).
type breaker struct {
	mu       sync.Mutex
	state    breakerState
	failures int       // consecutive failures while closed
	until    time.Time // end of the cool-down while open
	trial    bool      // the half-open trial call is in flight
}

// admit reports whether a call may go now, whether it is the half-open
// trial call, and whether the circuit just became half-open.
func (b *breaker) admit(now time.Time) (ok, trial, halfOpened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case circuitOpen:
		if now.Before(b.until) {
			return false, false, false
		}
		b.state, b.trial = circuitHalfOpen, true
		return true, true, true
	case circuitHalfOpen:
		if b.trial {
			return false, false, false
		}
		b.trial = true // the previous trial was cancelled by its caller
		return true, true, false
	default:
		return true, false, false
	}
}

// record applies a call's outcome; trial is what admit said of the call.
// Outcomes of calls admitted before the circuit opened are ignored.
func (b *breaker) record(o breakerOutcome, trial bool, now time.Time, threshold int, cooldown time.Duration) breakerTransition {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trial = false
		switch o {
		case breakerSuccess:
			b.state, b.failures = circuitClosed, 0
			return breakerClosed
		case breakerFailure:
			b.state, b.until = circuitOpen, now.Add(cooldown)
			return breakerReopened
		}
		return breakerUnchanged
	}
	if b.state != circuitClosed {
		return breakerUnchanged
	}
	switch o {
	case breakerSuccess:
		b.failures = 0
	case breakerFailure:
		b.failures++
		if b.failures >= threshold {
			b.state, b.until, b.failures = circuitOpen, now.Add(cooldown), 0
			return breakerOpened
		}
	}
	return breakerUnchanged
}

// idle reports whether the circuit holds no information worth keeping.
func (b *breaker) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == circuitClosed && b.failures == 0
}
