// Command bench-webhook is the app side of the webhook echo benchmark: it
// answers every handle_in webhook with an ok reply that echoes the pushed
// payload, as cheaply as a real app could ({"reply":{"response":…}}).
// BENCHMARKS.md compares the server's CPU per reply through it with the
// declarative reply rule. /connect accepts connect calls (the connect
// webhook figure of the churn benchmark). It also answers Centrifugo's RPC proxy on
// /centrifugo/rpc ({"result":{"data":…}}), so Centrifugo's echo goes through
// the same kind of local backend.
//
//	bench-webhook -listen 127.0.0.1:8093
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8093", "address to serve the webhook on (loopback)")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/centrifugo/rpc", centrifugoRPC)
	mux.HandleFunc("/connect", connect)
	mux.HandleFunc("/", echo)
	log.Fatal(http.ListenAndServe(*listen, mux))
}

// centrifugoRPC answers a Centrifugo RPC proxy request with its data.
func centrifugoRPC(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var call struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if len(call.Data) == 0 {
		w.Write([]byte(`{"result":{}}`))
		return
	}
	w.Write([]byte(`{"result":{"data":`))
	w.Write(call.Data)
	w.Write([]byte("}}"))
}

// connect accepts a connect call, naming the socket as an app would.
func connect(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok","id":"user_socket:bench"}`))
}

// echo answers a handle_in call with its payload as the reply's response.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var call struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(call.Payload) == 0 || string(call.Payload) == "null" {
		call.Payload = json.RawMessage(`{}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"reply":{"status":"ok","response":`))
	w.Write(call.Payload)
	w.Write([]byte("}}"))
}
