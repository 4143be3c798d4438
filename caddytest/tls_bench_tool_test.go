package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildBenchTool builds cmd/channels-bench once per test binary run.
var buildBenchTool = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "channels-bench-tool-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "channels-bench")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/channels-bench").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ../cmd/channels-bench: %v\n%s", err, out)
	}
	return bin, nil
})

// The load tool against Caddy with "tls internal": wss:// subscribers that
// trust the local CA's root (-ca, from the storage directory set in the
// global options) receive every message published through the https API
// and through a pushing wss socket, none lost, duplicated or reordered; the
// subscribe-only mode (-publish=false, -ready-file) with a publisher in a
// second process does too; without -ca the handshake fails.
func TestBenchToolOverTLS(t *testing.T) {
	bin, err := buildBenchTool()
	if err != nil {
		t.Fatal(err)
	}
	// One storage directory for every run: Caddy keeps the certificates it
	// manages in a process-wide cache across config loads, so a fresh
	// directory (a new local CA) on a second run (-count 2) would serve the
	// cached leaf signed by the previous CA. A fixed directory keeps the
	// CA, and its leaf, across runs and test binaries.
	storage := filepath.Join(os.TempDir(), "caddy-channels-tls-bench-storage")
	path := freshPath("tls-bench")
	loadCaddyfile(t, fmt.Sprintf(`{
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	persist_config off
	storage file_system {
		root %s
	}
}
https://127.0.0.1:9443 {
	tls internal
	channels {
		path %s
		api_key tls-bench
		channel bench:* {
			join allow
			handle_in msg broadcast
		}
	}
}
`, storage, path))
	root := filepath.Join(storage, "pki", "authorities", "local", "root.crt")
	waitTLSReady(t, "127.0.0.1:9443", root)

	base := []string{"-url", "wss://127.0.0.1:9443" + path, "-api", "https://127.0.0.1:9443" + path + "/api/broadcast",
		"-key", "tls-bench", "-ca", root, "-json", "-size", "1500"}
	for _, via := range []string{"api", "push"} {
		t.Run(via, func(t *testing.T) {
			res := runBenchTool(t, bin, append([]string{"fanout", "-via", via, "-topic", "bench:tls-" + via,
				"-sockets", "20", "-messages", "100"}, base...)...)
			requireIntactFanout(t, res, 20*100)
		})
	}

	t.Run("subscriber and publisher processes", func(t *testing.T) {
		ready := filepath.Join(t.TempDir(), "ready")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sub := exec.CommandContext(ctx, bin, append([]string{"fanout", "-publish=false", "-ready-file", ready,
			"-topic", "bench:tls-split", "-sockets", "30", "-messages", "50", "-drain", "50s"}, base...)...)
		var out, errOut bytes.Buffer
		sub.Stdout, sub.Stderr = &out, &errOut
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- sub.Wait() }()
		for {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("subscriber process exited before ready: %v\n%s%s", err, out.String(), errOut.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		pub := runBenchTool(t, bin, append([]string{"fanout", "-topic", "bench:tls-split", "-sockets", "1", "-messages", "50"}, base...)...)
		requireIntactFanout(t, pub, 50)
		if err := <-exited; err != nil {
			t.Fatalf("subscriber process: %v\n%s%s", err, out.String(), errOut.String())
		}
		var res map[string]any
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("subscriber output %q: %v", out.String(), err)
		}
		requireIntactFanout(t, res, 30*50)
	})

	t.Run("untrusted without -ca", func(t *testing.T) {
		cmd := exec.Command(bin, "fanout", "-url", "wss://127.0.0.1:9443"+path, "-sockets", "1", "-messages", "1", "-json")
		out, err := cmd.Output()
		if err == nil {
			t.Fatalf("no error without -ca: %s", out)
		}
		if !bytes.Contains(out, []byte("certificate")) {
			t.Fatalf("error does not name the certificate: %s", out)
		}
	})
}

// waitTLSReady waits until a handshake with addr verifies against the CA in
// rootFile: Caddy creates the root while loading, and obtains the leaf
// certificate in the background.
func waitTLSReady(t *testing.T, addr, rootFile string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		last = tryTLS(addr, rootFile)
		if last == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no verified TLS handshake with %s: %v", addr, last)
}

// tryTLS makes one handshake with addr trusting only the CA in rootFile.
func tryTLS(addr, rootFile string) error {
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate", rootFile)
	}
	c, err := tls.Dial("tcp4", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		return err
	}
	return c.Close()
}

// runBenchTool runs the load tool with -json and returns its result.
func runBenchTool(t *testing.T, bin string, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("channels-bench %v: %v\n%s%s", args, err, out.String(), errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("channels-bench output %q: %v", out.String(), err)
	}
	return res
}

// requireIntactFanout checks that a fanout result has every delivery once,
// in order, and no subscriber disconnected.
func requireIntactFanout(t *testing.T, res map[string]any, want float64) {
	t.Helper()
	for key, v := range map[string]any{
		"deliveries": want, "deliveries_expected": want, "lost": 0.0, "duplicated": 0.0,
		"reordered": 0.0, "subscribers_disconnected": 0.0, "drained": true,
	} {
		if res[key] != v {
			t.Errorf("%s = %v, want %v (result %v)", key, res[key], v, res)
		}
	}
}
