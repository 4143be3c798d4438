package pubsubtest

import (
	"context"
	"testing"
	"time"
)

const (
	// waitTimeout bounds every wait for an asynchronous delivery.
	waitTimeout = 10 * time.Second
	// quietPeriod is how long the suite waits to check that a message is
	// not delivered.
	quietPeriod = 150 * time.Millisecond
	// pollInterval is how often a wait re-checks its condition.
	pollInterval = 2 * time.Millisecond
)

// WaitFor polls cond until it holds or timeout passes, and fails the test
// with what when it does not. Adapter tests use it for their own waits.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// bg returns a context bounded by waitTimeout for one call.
func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// quiet waits for quietPeriod, so that a message that should not be
// delivered has had the time to arrive.
func quiet() { time.Sleep(quietPeriod) }

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// inTime reports whether the current time is before deadline. A timing
// test calls it after a step that had to finish before deadline, and skips
// its remaining checks when the machine was too slow for them to mean
// anything.
func inTime(t testing.TB, deadline time.Time, step string) bool {
	t.Helper()
	if time.Now().Before(deadline) {
		return true
	}
	t.Skipf("%s took too long on this machine for the timing checks; skipped", step)
	return false
}
