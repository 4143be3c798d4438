package channels

// Per-address tables: open sockets per client address (exact, bounded by
// the open sockets) and the connect rate per address (bounded by
// LimitsConfig.MaxAddresses, idle entries forgotten).

import (
	"sync"
	"time"
)

// ipCounts counts the open sockets of each client address. Guarded by
// hub.mu; an address leaves the table with its last socket.
type ipCounts map[string]int

// take counts one more socket of ip unless ip holds max already (max 0:
// no cap, and nothing is counted).
func (c ipCounts) take(ip string, max int) bool {
	if max <= 0 {
		return true
	}
	if c[ip] >= max {
		return false
	}
	c[ip]++
	return true
}

// release undoes take.
func (c ipCounts) release(ip string) {
	if n, ok := c[ip]; ok {
		if n <= 1 {
			delete(c, ip)
		} else {
			c[ip] = n - 1
		}
	}
}

// connectRates is the connect-rate bucket of each recent client address.
// It holds at most max addresses: when full, the idle ones (whose bucket
// refilled) go first, then arbitrary ones, so a flood of addresses costs
// bounded memory and at worst forgets some addresses' recent connects.
type connectRates struct {
	mu        sync.Mutex
	m         map[string]*bucket
	lastSweep time.Time
}

// allow takes a connect of ip under r at now.
func (c *connectRates) allow(ip string, r Rate, max int, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*bucket)
	}
	b := c.m[ip]
	if b == nil {
		if len(c.m) >= max || now.Sub(c.lastSweep) > sweepEvery(r) {
			c.sweep(r, max, now)
		}
		b = &bucket{}
		c.m[ip] = b
	}
	return b.allow(r, now)
}

// sweepEvery is how often idle addresses are forgotten: once a bucket
// had time to refill, and at least every minute.
func sweepEvery(r Rate) time.Duration {
	refill := time.Duration(r.burst() / float64(r.N) * float64(r.Per))
	return max(refill, time.Minute)
}

// sweep forgets the idle addresses and, while the table is still full,
// arbitrary ones (an eighth of it, so that sweeps stay rare).
func (c *connectRates) sweep(r Rate, max int, now time.Time) {
	c.lastSweep = now
	for ip, b := range c.m {
		if b.full(r, now) {
			delete(c.m, ip)
		}
	}
	if len(c.m) < max {
		return
	}
	drop := len(c.m) - max + max/8 + 1
	for ip := range c.m { // map order is random enough to spread the loss
		if drop == 0 {
			break
		}
		delete(c.m, ip)
		drop--
	}
}

// len is the number of remembered addresses.
func (c *connectRates) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
