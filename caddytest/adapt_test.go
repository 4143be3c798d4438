package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// These tests adapt Caddyfiles without loading them into the shared Caddy,
// so they bind no ports. caddytest.AssertLoadError is not used: it posts
// the config to the shared Caddy's admin endpoint.

// adaptDir holds the golden files: a Caddyfile, a line of ten dashes, then
// either the JSON `caddy adapt --pretty` prints or, when that part does not
// start with "{", a substring of the expected adapt error.
const adaptDir = "caddyfile_adapt"

// crlf matches line endings a checkout may have converted.
var crlf = regexp.MustCompile(`\r?\n`)

func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(adaptDir, "*.caddytest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files in %s", adaptDir)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(crlf.ReplaceAllString(string(data), "\n"), "\n----------\n")
			if !ok {
				t.Fatalf("no ---------- separator line")
			}
			input = strings.TrimSpace(input) + "\n"
			expected = strings.TrimSpace(expected)

			if got := string(caddyfile.Format([]byte(input))); got != input {
				t.Errorf("the Caddyfile part is not caddy fmt clean; formatted:\n%s", got)
			}

			if !strings.HasPrefix(expected, "{") {
				_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
				if err == nil {
					t.Fatalf("adapted without error, want one containing %q", expected)
				}
				if msg := crlf.ReplaceAllString(err.Error(), "\n"); !strings.Contains(msg, expected) {
					t.Fatalf("error does not contain the expected text\n got: %s\nwant: %s", msg, expected)
				}
				return
			}

			// file_server hides the Caddyfile by an OS-specific path.
			hide, _ := json.Marshal(fmt.Sprint(".", string(filepath.Separator), "Caddyfile"))
			expected = strings.ReplaceAll(expected, `"./Caddyfile"`, string(hide))
			if !caddytest.CompareAdapt(t, file, input, "caddyfile", expected) {
				t.Fatalf("adapted JSON differs from %s (diff on stdout)", file)
			}

			// A plain-HTTP site needs no certificate, so validating it only
			// provisions the modules: the channels handler must accept what
			// its Caddyfile parser produced.
			if strings.HasPrefix(input, "http://") {
				validateJSON(t, []byte(expected))
			}
		})
	}
}

// TestCaddyfileExample checks that Caddyfile.example is `caddy fmt` clean,
// adapts without warnings and provisions.
func TestCaddyfileExample(t *testing.T) {
	const name = "Caddyfile.example"
	input, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	if got := caddyfile.Format(input); !bytes.Equal(got, input) {
		t.Errorf("%s is not caddy fmt clean; formatted:\n%s", name, got)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(input, map[string]any{"filename": name})
	if err != nil {
		t.Fatalf("adapt %s: %v", name, err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w)
	}
	if !bytes.Contains(cfgJSON, []byte(`"handler":"channels"`)) {
		t.Errorf("adapted %s has no channels handler: %s", name, cfgJSON)
	}
	validateJSON(t, cfgJSON)
}

// validateJSON provisions a JSON config and cleans it up again, as
// `caddy validate` does. It starts no apps, so it binds no ports, not even
// the admin endpoint's.
func validateJSON(t *testing.T, cfgJSON []byte) {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatalf("unmarshal config: %v", err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
}
