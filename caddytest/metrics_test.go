package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The handler's counters appear in Caddy's metrics (admin /metrics),
// labelled by path.
func TestMetrics(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		path /metered
		api_key metrics-key
		channel room:* {
			join allow
		}
	}`))
	a := dial(t, "/metered", q("vsn", "2.0.0"), nil)
	b := dial(t, "/metered", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:m")
	b.join("1", "1", "room:m")
	status, body := httpDo(t, http.MethodPost, "/metered/api/broadcast",
		http.Header{"Authorization": {"Bearer metrics-key"}}, `{"topic":"room:m","event":"e","payload":{}}`)
	if status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", status, body)
	}
	a.expect(`[null,null,"room:m","e",{}]`)
	b.expect(`[null,null,"room:m","e",{}]`)
	// A LongPoll session counts under its own transport label.
	if _, body := httpDo(t, http.MethodGet, "/metered/longpoll?vsn=2.0.0", nil, ""); !strings.Contains(body, `"status":410`) {
		t.Fatalf("longpoll session not opened: %s", body)
	}

	want := []string{
		`caddy_channels_sockets{path="/metered",transport="websocket"} 2`,
		`caddy_channels_sockets{path="/metered",transport="longpoll"} 1`,
		`caddy_channels_connects_total{path="/metered",transport="websocket"} 2`,
		`caddy_channels_connects_total{path="/metered",transport="longpoll"} 1`,
		`caddy_channels_messages_in_total{path="/metered"} 2`,
		`caddy_channels_broadcasts_total{path="/metered"} 1`,
		`caddy_channels_deliveries_total{path="/metered"} 2`,
		`caddy_channels_slow_consumer_disconnects_total{path="/metered"} 0`,
	}
	eventually(t, 5*time.Second, "the metrics", func() bool {
		text := metricsText(t)
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
}
