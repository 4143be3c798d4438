package channels_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/channels"
)

// Example serves Phoenix Channels from a plain net/http server: compile the
// rules, create a hub, and hand {path}/websocket requests to it.
func Example() {
	rules, err := channels.CompileRules(channels.RulesSpec{
		Channels: []channels.ChannelSpec{{
			Pattern:  "room:*",
			Join:     &channels.GateSpec{Action: "allow", Reply: "{'room': subtopic}"},
			HandleIn: []channels.HandleInSpec{{Event: "new_msg", Action: "broadcast"}},
		}},
	})
	if err != nil {
		panic(err)
	}
	hub, err := channels.NewHub(channels.Config{Rules: rules}, nil, nil) // nil, nil: the in-memory broker and presence
	if err != nil {
		panic(err)
	}
	defer hub.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/socket/websocket", func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ServeWebSocket(w, r); err != nil {
			var he *channels.HTTPError
			if errors.As(err, &he) {
				http.Error(w, he.Error(), he.Status)
			}
		}
	})
	srv := httptest.NewServer(mux) // loopback only
	defer srv.Close()

	// A V2 client (what phoenix.js speaks) joins and pushes.
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`["1","1","room:lobby","phx_join",{}]`))
	_, reply, _ := conn.ReadMessage()
	fmt.Println(string(reply))
	conn.WriteMessage(websocket.TextMessage, []byte(`["1","2","room:lobby","new_msg",{"body":"hi"}]`))
	_, broadcast, _ := conn.ReadMessage()
	fmt.Println(string(broadcast))
	// Output:
	// ["1","1","room:lobby","phx_reply",{"response":{"room":"lobby"},"status":"ok"}]
	// [null,null,"room:lobby","new_msg",{"body":"hi"}]
}
