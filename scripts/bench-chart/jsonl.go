package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// loadToolLine is the part of a channels-bench -json result (one per line,
// as scripts/run-benchmarks.sh writes them) that the chart uses.
type loadToolLine struct {
	Server         string   `json:"server"`
	Scenario       string   `json:"scenario"`
	Sockets        int      `json:"sockets"`
	RateTarget     float64  `json:"rate_target"`
	DeliveriesPerS *float64 `json:"deliveries_per_s"`
	LatencyP99Us   *float64 `json:"latency_p99_us"`
}

// parseLoadToolResults turns load-tool JSON lines into chart results: the
// fan-out runs at the given offered rate (messages per second), one point
// per server and subscriber count.
func parseLoadToolResults(data []byte, rate float64) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l loadToolLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.Scenario != "fanout" || l.RateTarget != rate || l.Server == "" || l.Sockets <= 0 {
			continue
		}
		r := Result{Server: l.Server, Subscribers: l.Sockets, DeliveriesPerSec: l.DeliveriesPerS}
		if l.LatencyP99Us != nil {
			ms := *l.LatencyP99Us / 1000
			r.P99Ms = &ms
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fan-out results at %g msg/s", rate)
	}
	for i, r := range out {
		if !validValue(r.DeliveriesPerSec) || !validValue(r.P99Ms) {
			return nil, errors.New("result " + fmt.Sprint(i) + ": value out of range")
		}
	}
	return out, nil
}
