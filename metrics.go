package caddychannels

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-channels/caddy-channels/channels"
)

// metricsCollector exposes the counters of every live hub, labelled by
// the hub's path (never by topic: topics are unbounded). There is one
// collector for the process; Caddy makes a new registry per config load,
// so Provision registers it into each one.
type metricsCollector struct{}

var collector metricsCollector

func metricDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("caddy", "channels", name), help, []string{"path"}, nil)
}

// transportDesc is metricDesc with a transport label as well.
func transportDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("caddy", "channels", name), help, []string{"path", "transport"}, nil)
}

var (
	descSockets       = transportDesc("sockets", "Open sockets, by transport (websocket, longpoll).")
	descConnects      = transportDesc("connects_total", "Sockets accepted, by transport (websocket, longpoll).")
	descSlowConsumers = metricDesc("slow_consumer_disconnects_total", "Sockets closed because their outbound queue exceeded max_queue_size.")
	descInvalidFrames = metricDesc("invalid_frame_disconnects_total", "Sockets closed for an invalid, non-UTF-8 or oversized frame.")
	descMessagesIn    = metricDesc("messages_in_total", "Inbound messages handled.")
	descBroadcasts    = metricDesc("broadcasts_total", "Broadcasts fanned out on this node.")
	descDeliveries    = metricDesc("deliveries_total", "Broadcast frames queued on sockets of this node.")
	descDeflateFrames = metricDesc("deflate_frames_total", "Compressed (permessage-deflate) frames built: one per broadcast and serializer, however many sockets it reached.")
	descDeflateSaved  = metricDesc("deflate_saved_bytes_total", "Bytes the compressed frames built are smaller than their plain frames (saved per delivery of each).")
	descHookCalls     = metricDesc("webhook_calls_total", "Webhook calls, leave notifications included.")
	descHookFailures  = metricDesc("webhook_failures_total", "Webhook calls that failed (timeouts, connection errors, 5xx, open circuit).")
	descHookRejected  = metricDesc("webhook_rejected_total", "Webhook calls refused by an open circuit breaker.")
	descBreakerOpens  = metricDesc("webhook_breaker_opens_total", "Times a webhook circuit breaker opened.")
	descHookDropped   = metricDesc("webhook_dropped_notifications_total", "Leave notifications dropped because the queue was full or closed.")
	descHookPending   = metricDesc("webhook_pending_notifications", "Leave notifications queued or being delivered.")
	descRefusals      = prometheus.NewDesc(prometheus.BuildFQName("caddy", "channels", "refusals_total"),
		"What the edge refused or cut off, by reason: auth, token_expired, connect_rate, sockets_per_ip, sockets_per_id, message_rate, join_rate, event_rate, flood, join_token.",
		[]string{"path", "reason"}, nil)
)

// Describe implements prometheus.Collector.
func (metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSockets, descConnects, descSlowConsumers, descInvalidFrames,
		descMessagesIn, descBroadcasts, descDeliveries, descDeflateFrames, descDeflateSaved, descHookCalls, descHookFailures, descHookRejected,
		descBreakerOpens, descHookDropped, descHookPending, descRefusals} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (metricsCollector) Collect(ch chan<- prometheus.Metric) {
	hubs.Range(func(key, value any) bool {
		sh, ok := value.(*sharedHub)
		if !ok {
			return true
		}
		path := sh.path
		st := sh.hub.Stats()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, path)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), path)
		}
		byTransport := func(d *prometheus.Desc, vt prometheus.ValueType, ws, lp float64) {
			ch <- prometheus.MustNewConstMetric(d, vt, ws, path, "websocket")
			ch <- prometheus.MustNewConstMetric(d, vt, lp, path, "longpoll")
		}
		byTransport(descSockets, prometheus.GaugeValue, float64(st.Sockets-st.LongPollSessions), float64(st.LongPollSessions))
		byTransport(descConnects, prometheus.CounterValue, float64(st.Connects-st.LongPollConnects), float64(st.LongPollConnects))
		counter(descSlowConsumers, st.SlowConsumers)
		counter(descInvalidFrames, st.InvalidFrames)
		counter(descMessagesIn, st.MessagesIn)
		counter(descBroadcasts, st.Broadcasts)
		counter(descDeliveries, st.Deliveries)
		counter(descDeflateFrames, st.DeflateFrames)
		counter(descDeflateSaved, st.DeflateSavedBytes)
		counter(descHookCalls, st.Webhooks.Calls)
		counter(descHookFailures, st.Webhooks.Failures)
		counter(descHookRejected, st.Webhooks.Rejected)
		counter(descBreakerOpens, st.Webhooks.BreakerOpens)
		counter(descHookDropped, st.Webhooks.Dropped)
		gauge(descHookPending, float64(st.Webhooks.Pending))
		for kind, n := range st.Refusals {
			ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n), path, channels.Refusal(kind).String())
		}
		return true
	})
}

// registerMetrics adds the collector to the config's registry; a second
// handler in the same config finds it already there.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	if err := reg.Register(collector); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

var _ prometheus.Collector = metricsCollector{}
