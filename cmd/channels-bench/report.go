package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// report is the ordered result of one run, printed as text or one JSON
// object.
type report struct {
	fields []field
}

// field is one result: a JSON key, a human label, a value (a number or a
// string) and the unit shown after it in text.
type field struct {
	key   string
	label string
	value any
	unit  string
}

// add appends a result.
func (r *report) add(key, label string, value any, unit string) {
	r.fields = append(r.fields, field{key: key, label: label, value: value, unit: unit})
}

// writeText prints one aligned "label  value unit" line per field.
func (r *report) writeText(w io.Writer) error {
	width := 0
	for _, f := range r.fields {
		width = max(width, len(f.label))
	}
	var b bytes.Buffer
	for _, f := range r.fields {
		fmt.Fprintf(&b, "%-*s  %s", width, f.label, formatValue(f.value))
		if f.unit != "" {
			b.WriteString(" " + f.unit)
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeJSON prints the fields as one JSON object, keys in report order.
func (r *report) writeJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(f.key))
		b.WriteByte(':')
		v := f.value
		if x, ok := v.(float64); ok {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				v = nil
			} else {
				v = math.Round(x*1000) / 1000
			}
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", f.key, err)
		}
		b.Write(enc)
	}
	b.WriteString("}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// formatValue renders a value for text output: floats with three
// significant digits after the point at most.
func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		switch a := math.Abs(x); {
		case math.IsNaN(x) || math.IsInf(x, 0):
			return "n/a"
		case a >= 1000:
			return strconv.FormatFloat(x, 'f', 0, 64)
		case a >= 10:
			return strconv.FormatFloat(x, 'f', 1, 64)
		default:
			return strconv.FormatFloat(x, 'f', 3, 64)
		}
	case nil:
		return "n/a"
	default:
		return fmt.Sprint(x)
	}
}

// us converts nanoseconds to microseconds.
func us(ns int64) float64 { return float64(ns) / 1e3 }

// perSecond returns n divided by d in seconds (0 when d is not positive).
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// addLatency adds the count, p50, p90, p99, p99.9 and max of h in
// microseconds, keys prefixed with prefix.
func (r *report) addLatency(prefix, label string, h *Histogram) {
	r.add(prefix+"_p50_us", label+" p50", us(h.Quantile(0.50)), "µs")
	r.add(prefix+"_p90_us", label+" p90", us(h.Quantile(0.90)), "µs")
	r.add(prefix+"_p99_us", label+" p99", us(h.Quantile(0.99)), "µs")
	r.add(prefix+"_p999_us", label+" p99.9", us(h.Quantile(0.999)), "µs")
	r.add(prefix+"_max_us", label+" max", us(h.Max()), "µs")
	r.add(prefix+"_mean_us", label+" mean", h.Mean()/1e3, "µs")
}

// addServer adds the server's CPU time between two samples, the share of
// one core it used, and the CPU per unit of work (n units named per). keyTag
// and labelTag tell apart several windows of one run. Nothing is added
// when either sample lacks /proc readings.
func (r *report) addServer(keyTag, labelTag string, a, b serverSample, n int64, per string) {
	if !a.OK || !b.OK {
		return
	}
	cpu := b.CPU - a.CPU
	wall := b.At.Sub(a.At).Seconds()
	r.add("server_cpu_s"+keyTag, "server CPU"+labelTag, cpu, "s")
	if wall > 0 {
		r.add("server_cpu_util"+keyTag, "server core use"+labelTag, 100*cpu/wall, "%")
	}
	if n > 0 {
		r.add("server_cpu_us_per_"+per+keyTag, "server CPU per "+per+labelTag, cpu*1e6/float64(n), "µs")
	}
	r.addWrites(keyTag, labelTag, a, b, n, per)
}

// addWrites adds the server's write syscalls between two samples and, for
// deliveries and replies, the frames sent per write syscall. Every write
// syscall of the process counts (API answers, the runtime's poller wake-ups
// and logs too), so frames per write is a lower bound for the sockets'.
func (r *report) addWrites(keyTag, labelTag string, a, b serverSample, n int64, per string) {
	if !a.HaveIO || !b.HaveIO {
		return
	}
	writes := b.Syscw - a.Syscw
	r.add("server_write_syscalls"+keyTag, "server write syscalls"+labelTag, writes, "")
	if (per == "delivery" || per == "reply") && n > 0 && writes > 0 {
		r.add("frames_per_write"+keyTag, "frames per write"+labelTag, float64(n)/float64(writes), "")
	}
}

// addServerState adds RSS, threads and goroutines of one sample.
func (r *report) addServerState(tag, label string, s serverSample) {
	if s.OK {
		r.add("server_rss_kb_"+tag, "server RSS "+label, s.RSSKB, "kB")
		r.add("server_threads_"+tag, "server threads "+label, s.Threads, "")
	}
	if s.Goroutines >= 0 {
		r.add("server_goroutines_"+tag, "server goroutines "+label, s.Goroutines, "")
	}
}

// addClientCPU adds this process's CPU time between two readings and per
// unit of work.
func (r *report) addClientCPU(a, b float64, n int64, per string) {
	cpu := b - a
	r.add("client_cpu_s", "client CPU", cpu, "s")
	if n > 0 {
		r.add("client_cpu_us_per_"+per, "client CPU per "+per, cpu*1e6/float64(n), "µs")
	}
}
