// Command bench-summary prints the results of scripts/run-benchmarks.sh as a
// Markdown table: one row per server and scenario label, each figure the
// median of the repetitions (REPEAT=n runs every scenario n times).
//
//	go run ./scripts/bench-summary scripts/results/bench-results.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-summary results.jsonl")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-summary: %v\n", err)
		os.Exit(1)
	}
	defer f.Close()
	rows, err := summarize(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-summary: %v\n", err)
		os.Exit(1)
	}
	if err := writeTable(os.Stdout, rows); err != nil {
		fmt.Fprintf(os.Stderr, "bench-summary: %v\n", err)
		os.Exit(1)
	}
}

// row is one server and label with the repetitions' numeric fields.
type row struct {
	server, label string
	values        map[string][]float64
	errors        []string
}

// summarize groups the JSON lines by server and label, in order of first
// appearance.
func summarize(r io.Reader) ([]*row, error) {
	var rows []*row
	index := map[string]*row{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		server, _ := m["server"].(string)
		label, _ := m["label"].(string)
		key := server + "\x00" + label
		rw := index[key]
		if rw == nil {
			rw = &row{server: server, label: label, values: map[string][]float64{}}
			index[key] = rw
			rows = append(rows, rw)
		}
		for k, v := range m {
			if x, ok := v.(float64); ok {
				rw.values[k] = append(rw.values[k], x)
			}
		}
		if e, ok := m["error"].(string); ok {
			rw.errors = append(rw.errors, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return rows, nil
}

// median returns the median of key's values and whether there were any.
func (r *row) median(key string) (float64, bool) {
	v := slices.Clone(r.values[key])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// reps is the number of repetitions of the row.
func (r *row) reps() int {
	n := 0
	for _, v := range r.values {
		n = max(n, len(v))
	}
	return n
}

// unit returns what the row's throughput and CPU figures count.
func (r *row) unit() (rate, cpu string) {
	for _, u := range []struct{ rate, cpu string }{
		{"deliveries_per_s", "server_cpu_us_per_delivery"},
		{"replies_per_s", "server_cpu_us_per_reply"},
		{"cycles_per_s", "server_cpu_us_per_cycle"},
	} {
		if _, ok := r.values[u.rate]; ok {
			return u.rate, u.cpu
		}
	}
	return "", "server_cpu_us_per_socket"
}

// writeTable prints the medians as a Markdown table.
func writeTable(w io.Writer, rows []*row) error {
	var b strings.Builder
	b.WriteString("| scenario | server | runs | rate /s | p50 / p99 ms | server CPU µs per unit (whole run) | fan-out: publish+drain only | server core % | RSS per socket KB | lost / dup / reordered | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		rate, cpu := r.unit()
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s / %s | %s | %s | %s | %s | %s / %s / %s | %s |\n",
			r.label, r.server, r.reps(),
			r.format(rate, 1, "%.0f"),
			r.format("latency_p50_us", 1e-3, "%.1f"), r.format("latency_p99_us", 1e-3, "%.1f"),
			r.format(cpu, 1, "%.2f"), r.format(cpu+"_publish", 1, "%.2f"), r.format("server_cpu_util", 1, "%.0f"),
			r.format("server_rss_per_socket_bytes", 1.0/1000, "%.1f"),
			r.format("lost", 1, "%.0f"), r.format("duplicated", 1, "%.0f"), r.format("reordered", 1, "%.0f"),
			r.errorText())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// format prints the median of key times scale, or "–" when absent.
func (r *row) format(key string, scale float64, verb string) string {
	v, ok := r.median(key)
	if !ok || key == "" {
		return "–"
	}
	return fmt.Sprintf(verb, v*scale)
}

// errorText counts the failed repetitions and cycles, error replies and
// disconnected subscribers.
func (r *row) errorText() string {
	var parts []string
	if len(r.errors) > 0 {
		parts = append(parts, fmt.Sprintf("%d failed: %.80s", len(r.errors), r.errors[0]))
	}
	for _, k := range []string{"error_replies", "failures", "subscribers_disconnected", "unanswered"} {
		if v, ok := r.median(k); ok && v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "; ")
}
