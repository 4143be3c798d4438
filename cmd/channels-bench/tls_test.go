package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestClientTLS(t *testing.T) {
	if conf, err := clientTLS("", false); conf != nil || err != nil {
		t.Fatalf("no flags: %v, %v; want Go's defaults (nil)", conf, err)
	}
	conf, err := clientTLS("", true)
	if err != nil || !conf.InsecureSkipVerify {
		t.Fatalf("-insecure: %v, %v", conf, err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := clientTLS(bad, false); err == nil {
		t.Fatal("-ca without a PEM certificate: no error")
	}
	if _, err := clientTLS(filepath.Join(dir, "missing.pem"), false); err == nil {
		t.Fatal("missing -ca file: no error")
	}
}

func TestSubscribeOnlyFlags(t *testing.T) {
	if _, err := parseConfig([]string{"echo", "-publish=false"}, io.Discard); err == nil {
		t.Fatal("echo -publish=false: no error")
	}
	if _, err := parseConfig([]string{"fanout", "-ready-file", "x"}, io.Discard); err == nil {
		t.Fatal("-ready-file without -publish=false: no error")
	}
	cfg, err := parseConfig([]string{"fanout", "-publish=false", "-ready-file", "x", "-url", "wss://127.0.0.1:1/socket", "-insecure"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.publish || cfg.readyFile != "x" || cfg.tlsClient == nil || !cfg.tlsClient.InsecureSkipVerify {
		t.Fatalf("config %+v", cfg)
	}
}

func TestWriteLatency(t *testing.T) {
	h := newHistogram()
	for _, v := range []int64{5, 5, 1000, 123456} {
		h.Record(v)
	}
	path := filepath.Join(t.TempDir(), "lat.json")
	if err := writeLatency(path, h); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f histogramFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, bk := range f.Buckets {
		n += bk[2]
		if i := histIndex(bk[0]); histIndex(bk[0]+bk[1]-1) != i {
			t.Errorf("bucket %v spans two buckets", bk)
		}
	}
	if n != 4 || f.Total != 4 || f.Min != 5 || f.Max != 123456 || len(f.Buckets) != 3 {
		t.Fatalf("file %s", b)
	}
}
