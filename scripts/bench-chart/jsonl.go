package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
// per server and subscriber count. Repetitions (REPEAT in
// run-benchmarks.sh) become one point, the median of each value, as
// scripts/bench-summary reports them.
func parseLoadToolResults(data []byte, rate float64) ([]Result, error) {
	runs, err := parseLoadToolRuns(data, rate)
	if err != nil {
		return nil, err
	}
	type key struct {
		server string
		subs   int
	}
	var order []key
	groups := map[key][]Result{}
	for _, r := range runs {
		k := key{r.Server, r.Subscribers}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		g := groups[k]
		out = append(out, Result{
			Server:           k.server,
			Subscribers:      k.subs,
			DeliveriesPerSec: medianOf(g, func(r Result) *float64 { return r.DeliveriesPerSec }),
			P99Ms:            medianOf(g, func(r Result) *float64 { return r.P99Ms }),
		})
	}
	return out, nil
}

// medianOf returns the median of the values get finds in rs (the mean of
// the middle two for an even count), or nil when none has one.
func medianOf(rs []Result, get func(Result) *float64) *float64 {
	var vs []float64
	for _, r := range rs {
		if v := get(r); v != nil {
			vs = append(vs, *v)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return &m
}

// parseLoadToolRuns returns every fan-out run at rate, one result per line.
func parseLoadToolRuns(data []byte, rate float64) ([]Result, error) {
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
