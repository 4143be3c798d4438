package integration

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
)

// chromiumPath is Debian's chromium package; playwright-core drives it and
// never downloads a browser of its own.
const chromiumPath = "/usr/bin/chromium"

// browserSecret and browserAPIKey stand in for the example Caddyfile's
// {env.CHANNELS_WEBHOOK_SECRET} and {env.CHANNELS_API_KEY}.
const (
	browserSecret = "browser-webhook-secret"
	browserAPIKey = "browser-api-key"
)

// browserTimeout bounds the node run, browser start included.
const browserTimeout = 60 * time.Second

// requireChromium returns chromiumPath, skipping the test when it is
// missing unless the CI environment variable is set (then it fails), as
// requireNode does for node.
func requireChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is missing (apt-get install chromium); set CI to make this a failure", chromiumPath)
		}
		t.Fatalf("%s is required when CI is set: %v", chromiumPath, err)
	}
	return chromiumPath
}

// exampleCaddyfile is examples/backend/Caddyfile as it is, pointed at the
// chat app at appURL and at the test's Caddy: the site moves to
// localhost:9080, the app's 127.0.0.1:3000 becomes appURL's host, the env
// placeholders get fixed values, and the page's roots become absolute
// (they are relative to the repository root, the tests run in caddytest).
func exampleCaddyfile(t *testing.T, appURL string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "backend", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(appURL)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, r := range []struct{ old, new string }{
		{"http://localhost:8080 {", "http://localhost:9080 {"},
		{"127.0.0.1:3000", u.Host},
		{"{env.CHANNELS_WEBHOOK_SECRET}", browserSecret},
		{"{env.CHANNELS_API_KEY}", browserAPIKey},
		{"root * caddytest/js/", "root * " + filepath.ToSlash(filepath.Join(root, "caddytest", "js")) + "/"},
		{"root * examples/backend/public", "root * " + filepath.ToSlash(filepath.Join(root, "examples", "backend", "public"))},
	} {
		if !strings.Contains(text, r.old) {
			t.Fatalf("examples/backend/Caddyfile no longer contains %q: update exampleCaddyfile", r.old)
		}
		text = strings.ReplaceAll(text, r.old, r.new)
	}
	return globalOptions + text
}

// browserArtifacts is where the screenshots go: $CHANNELS_ARTIFACTS/<test>
// when set, else a temporary directory removed after the test.
func browserArtifacts(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CHANNELS_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(base, t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ensurePlaywright runs npm ci when node_modules predates playwright-core
// (ensureNodeModules only installs a missing node_modules).
func ensurePlaywright(ctx context.Context, t *testing.T) {
	t.Helper()
	ensureNodeModules(ctx, t)
	_, err := os.Stat(filepath.Join(phoenixJSDir, "node_modules", "playwright-core"))
	if err == nil {
		return
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checking node_modules/playwright-core: %v", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("playwright-core is missing and npm is not on PATH: %v", err)
	}
	runLogged(ctx, t, "npm ci", exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund"))
}

// TestBrowserChat runs js/browser.test.mjs: the example chat page
// (examples/backend/public) in headless Chromium, served by a Caddy that
// runs examples/backend/Caddyfile in front of the example chat app. Two
// users log in, chat, see each other in the presence list, and one reloads
// while the other writes: after the reload the page shows every message
// exactly once. Screenshots go to browserArtifacts; with
// CHANNELS_UPDATE_SCREENSHOTS set, the final ones also replace
// docs/screenshots/chat.png and presence.png. Skipped without node or
// /usr/bin/chromium, unless CI is set.
func TestBrowserChat(t *testing.T) {
	node := requireNode(t)
	chromium := requireChromium(t)

	app := chat.New(browserSecret, t.Logf)
	srv := httptest.NewServer(app.Handler())
	// Closing the app waits for its in-flight calls, so it never logs
	// after the test ends.
	t.Cleanup(srv.Close)

	loadCaddyfile(t, exampleCaddyfile(t, srv.URL))

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	ensurePlaywright(ctx, t)

	artifacts := browserArtifacts(t)
	t.Logf("screenshots: %s", artifacts)
	env := append(os.Environ(),
		"CHANNELS_PAGE_URL="+baseURL+"/",
		"CHANNELS_CHROMIUM="+chromium,
		"CHANNELS_ARTIFACTS="+artifacts,
		"NO_COLOR=1",
	)
	if os.Getenv("CHANNELS_UPDATE_SCREENSHOTS") != "" {
		docs, err := filepath.Abs(filepath.Join("..", "docs", "screenshots"))
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, "CHANNELS_SCREENSHOTS="+docs)
		t.Logf("updating %s", docs)
	}
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "browser.test.mjs")
	cmd.Env = env
	runLogged(ctx, t, "node --test", cmd)
}
