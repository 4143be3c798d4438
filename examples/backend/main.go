// Command backend runs the example chat app behind the channels Caddy
// handler (see README.md next to this file):
//
//	CHANNELS_WEBHOOK_SECRET=… go run ./examples/backend -listen 127.0.0.1:3000
//
// It refuses to start without CHANNELS_WEBHOOK_SECRET unless -insecure is
// given, in which case webhook signatures are not checked.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "address to serve the webhooks and /login on")
	insecure := flag.Bool("insecure", false, "start without CHANNELS_WEBHOOK_SECRET and accept unsigned webhooks")
	flag.Parse()
	if err := run(*listen, os.Getenv("CHANNELS_WEBHOOK_SECRET"), *insecure); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

// run serves the app on addr until SIGINT or SIGTERM.
func run(addr, secret string, insecure bool) error {
	if secret == "" && !insecure {
		return errors.New("CHANNELS_WEBHOOK_SECRET is not set (use -insecure to run without signature checks)")
	}
	logger := log.New(os.Stderr, "chat: ", log.LstdFlags)
	if secret == "" {
		logger.Print("warning: no CHANNELS_WEBHOOK_SECRET: webhook signatures are not checked")
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           chat.New(secret, logger.Printf).Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Printf("listening on http://%s", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
