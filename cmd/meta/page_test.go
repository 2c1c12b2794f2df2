package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// chromium is a headless Chromium driven by chromedp, with what the page
// writes to its console collected. Debian's chromium at /usr/bin/chromium
// (or $META_TEST_CHROMIUM_PATH); without one the test is skipped, unless
// $META_TEST_CHROMIUM is "required" (CI), when it fails.
type chromium struct {
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

func newChromium(t *testing.T) *chromium {
	t.Helper()
	path := os.Getenv("META_TEST_CHROMIUM_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("META_TEST_CHROMIUM") == "required" {
			t.Fatalf("no Chromium at %s, and META_TEST_CHROMIUM=required: %v", path, err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium; META_TEST_CHROMIUM=required makes this a failure)", path)
	}
	// As root (CI) Chromium needs --no-sandbox; the machine's closed
	// network refuses what Chromium fetches for itself, hence the
	// background-networking, component-update and sync flags.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	c := &chromium{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				line = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				line = fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if line != "" {
			c.mu.Lock()
			c.console = append(c.console, line)
			c.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if err := chromedp.Do(ctx, call(cdplog.Enable, cdp.Empty{}), call(runtime.Enable, cdp.Empty{})); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return c
}

// call is a protocol command as an action.
func call[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cmd, params)
		return err
	})
}

// activate shows the context's tab, as a click on it does: the tab shown
// before is then hidden.
func activate() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, target.ActivateTarget, target.ActivateTargetParams{TargetID: t.TargetID})
		return err
	})
}

// do runs steps, failing the test with what for and where the page was.
func (c *chromium) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.fail(t, what, err)
	}
}

func (c *chromium) fail(t *testing.T, what string, err error) {
	t.Helper()
	loc, _ := chromedp.Run(c.ctx, chromedp.Location())
	html, _ := chromedp.Run(c.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	t.Fatalf("%s: %v\nat %s:\n%.3000s", what, err, loc, html)
}

// until waits until js is true in the page, asking again across the
// navigations that may come meanwhile.
func (c *chromium) until(t *testing.T, what, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.fail(t, what, fmt.Errorf("not %s within 20 s (last error: %v)", js, err))
}

// get runs one action that gives a value.
func get[T any](t *testing.T, c *chromium, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		c.fail(t, what, err)
	}
	return v
}

// takeConsole returns what the page wrote to its console so far, and
// forgets it.
func (c *chromium) takeConsole() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.console
	c.console = nil
	return out
}

// artefact is where a test keeps what a person may want to look at
// after it ran: $META_TEST_ARTEFACTS (CI sets it), else the test's
// temporary directory.
func artefact(t *testing.T, name string) string {
	dir := os.Getenv("META_TEST_ARTEFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

func screenshot(t *testing.T, c *chromium, name string) {
	t.Helper()
	png := get(t, c, "screenshot "+name, chromedp.FullScreenshot(100))
	path := artefact(t, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// The page, as a browser sees it: it asks for a token and refuses
// without one, shows the log's apps, filters them, opens an app's
// timeline, and follows what other processes append and observe without
// a reload; it says when it lost the hub and is live again when the hub
// is back. Nothing it loads writes an error to the console.
func TestPageInABrowser(t *testing.T) {
	c := newChromium(t)
	dir := newServeLog(t)
	must := func(args ...string) string {
		t.Helper()
		out, err := meta(t, dir, args...)
		if err != nil {
			t.Fatalf("meta %v: %v", args, err)
		}
		return out
	}
	must("append", "deploy", "cloud.example.org", "--version", "1.0.0", "--recipe", "nextcloud")
	must("append", "deploy", "matrix.example.com", "--version", "5.0.0+v1.94.0", "--recipe", "matrix-synapse")
	must("append", "deploy", "cloud.staging.example.org", "--env", "staging", "--version", "1.0.0", "--recipe", "nextcloud")
	must("append", "upgrade", "cloud.example.org", "--version", "1.1.0", "-m", "security release")
	token := strings.TrimSpace(must("token", "create", "alice-laptop"))
	hub := startHub(t, dir)
	base := fmt.Sprintf("http://127.0.0.1:%d", hub.httpPort)
	others := func(args ...string) {
		t.Helper()
		must(append(hub.flags(), args...)...)
	}

	type css = chromedp.CSS
	rows := `document.querySelectorAll("tr[data-ref]").length`
	// Without a token: the sign-in page, and no app in sight.
	c.do(t, "open without a token", chromedp.Navigate(base+"/apps/coop/prod/cloud.example.org"), chromedp.WaitVisible(css("#token")))
	if loc := get(t, c, "where", chromedp.Location()); !strings.HasPrefix(loc, base+"/login?next=") {
		t.Fatalf("without a token at %s, want the sign-in page", loc)
	}
	if text := get(t, c, "the sign-in page", chromedp.Text(css("main"))); strings.Contains(text, "example.org") {
		t.Fatalf("the sign-in page shows the log: %s", text)
	}
	c.do(t, "a wrong token", chromedp.SendKeys(css("#token"), "meta_wrong"), chromedp.Submit(css("#token")), chromedp.WaitVisible(css(".problem")))
	c.takeConsole() // the 401 of the wrong token is the test's own doing

	// With one: on to the page asked for, then every app.
	c.do(t, "sign in", chromedp.SetValue(css("#token"), token), chromedp.Submit(css("#token")), chromedp.WaitVisible(css("ol.timeline")))
	if loc := get(t, c, "where", chromedp.Location()); loc != base+"/apps/coop/prod/cloud.example.org" {
		t.Fatalf("signed in at %s, want the app asked for", loc)
	}
	c.do(t, "the main page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("table.apps")), chromedp.WaitReady(css(`body[data-live="ok"]`)))
	n := get(t, c, "rows", chromedp.Evaluate[int](rows))
	text := get(t, c, "the table", chromedp.Text(css("table.apps")))
	if n != 3 || !strings.Contains(text, "cloud.staging.example.org") || !strings.Contains(text, "1.1.0") || !strings.Contains(text, "5.0.0+v1.94.0") {
		t.Fatalf("%d rows: %s", n, text)
	}
	if who := get(t, c, "who", chromedp.Text(css(".viewer"))); !strings.Contains(who, "alice-laptop") {
		t.Errorf("signed in as %q", who)
	}

	// Keyboard: the first Tab reaches the skip link, which leads to the
	// content.
	c.do(t, "tab", chromedp.KeyEvent("\t"))
	if focused := get(t, c, "focus", chromedp.Evaluate[string](`document.activeElement.className`)); focused != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}

	// Filter: env staging, by the form, to a URL that can be shared.
	c.do(t, "filter", chromedp.SetValue(css("#f-env"), "staging"), chromedp.Click(css(".filters button[type=submit]")))
	c.until(t, "the filtered page", `location.search.includes("env=staging") && document.readyState === "complete"`)
	loc := get(t, c, "where", chromedp.Location())
	if n := get(t, c, "rows", chromedp.Evaluate[int](rows)); !strings.Contains(loc, "env=staging") || n != 1 {
		t.Fatalf("filtered to %s with %d rows, want env=staging and 1", loc, n)
	}

	// An app's timeline, from its link.
	c.do(t, "open an app", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("table.apps")),
		chromedp.Click(css(`tr[data-ref="coop/prod/cloud.example.org"] a`)))
	c.until(t, "the app's page", `location.pathname === "/apps/coop/prod/cloud.example.org" && document.readyState === "complete"`)
	n = get(t, c, "events", chromedp.Evaluate[int](`document.querySelectorAll("ol.timeline li.event").length`))
	if text := get(t, c, "the timeline", chromedp.Text(css("ol.timeline"))); n != 2 || !strings.Contains(text, "security release") || !strings.Contains(text, "upgrade") {
		t.Fatalf("timeline of %d events: %s", n, text)
	}
	screenshot(t, c, "page-app.png")

	// Live: another process appends, then observes; the open page shows
	// both without a reload.
	c.do(t, "the main page again", chromedp.Navigate(base+"/"), chromedp.WaitReady(css(`body[data-live="ok"]`)), chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	start := time.Now()
	others("append", "deploy", "new.example.org", "--version", "0.1.0", "--recipe", "gitea")
	appended := time.Now()
	c.do(t, "the append shows", chromedp.WaitVisible(css(`tr[data-ref="coop/prod/new.example.org"]`)))
	t.Logf("an append took %v to run and %v more to show on the open page", appended.Sub(start).Round(time.Millisecond), time.Since(appended).Round(time.Millisecond))
	inspect, err := filepath.Abs("../../swarm/testdata/rollback_completed.json")
	if err != nil {
		t.Fatal(err)
	}
	others("observe", "matrix.example.com", "--inspect", inspect)
	c.do(t, "the drift shows", chromedp.WaitVisible(css(`tr[data-ref="coop/prod/matrix.example.com"][data-drift="swarm-rollback"]`)))
	// A promotion: cloud.example.org, which follows the channel, is then
	// behind it.
	must("release", "add", "nextcloud", "1.1.0")
	must("release", "add", "nextcloud", "1.2.0")
	others("follow", "cloud.example.org", "nextcloud/stable")
	others("channel", "promote", "nextcloud", "1.2.0", "--to", "stable")
	c.do(t, "the channel lag shows", chromedp.WaitVisible(css(`tr[data-ref="coop/prod/cloud.example.org"] td[data-label="Channel"] .tag.warn`)))
	if text := get(t, c, "the lag", chromedp.Text(css(`tr[data-ref="coop/prod/cloud.example.org"] td[data-label="Channel"]`))); !strings.Contains(text, "upgrade to 1.2.0") {
		t.Errorf("the channel cell says %q", text)
	}
	if !get(t, c, "no reload", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Fatal("the page reloaded to show the change")
	}
	if lines := c.takeConsole(); len(lines) > 0 {
		t.Errorf("the page wrote to the console:\n%s", strings.Join(lines, "\n"))
	}
	screenshot(t, c, "page-apps.png")
	c.do(t, "dark", call(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}))
	if bg := get(t, c, "the background", chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)); bg != "rgb(21, 23, 25)" {
		t.Errorf("background %q in the dark, want the dark scheme's", bg)
	}
	screenshot(t, c, "page-apps-dark.png")
	c.do(t, "a phone", call(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}), chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if get(t, c, "width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("on a phone the page is wider than the screen")
	}
	screenshot(t, c, "page-apps-phone.png")
	c.do(t, "back to a laptop", chromedp.EmulateViewport(1280, 900))

	// Tabs: a page in a tab that is not shown lets go of its stream, so a
	// browser's six connections to the hub (plain HTTP) are never all held
	// by pages nobody looks at. Eight tabs opened one after another in one
	// window, each shown while it loads, all load and go live.
	for i := range 8 {
		tab, cancelTab := chromedp.NewContext(c.ctx, chromedp.WithNewWindow(false))
		defer cancelTab()
		ctx, cancel := context.WithTimeout(tab, 15*time.Second)
		err := chromedp.Do(ctx, activate(), chromedp.Navigate(fmt.Sprintf("%s/?tab=%d", base, i)), chromedp.WaitVisible(css("table.apps")), chromedp.WaitReady(css(`body[data-live="ok"]`)))
		cancel()
		if err != nil {
			t.Fatalf("tab %d of 8 did not load and go live: %v", i+1, err)
		}
	}
	// Shown again, the first page takes its stream back and is live.
	c.do(t, "the first page shown again", activate(), chromedp.WaitReady(css(`body[data-live="ok"]`)))

	// The hub goes: the page says so; it comes back: the page is live,
	// with what was appended meanwhile.
	hub.stop()
	c.do(t, "the hub lost", chromedp.WaitReady(css(`body[data-live="lost"]`)))
	if text := get(t, c, "status", chromedp.Text(css("#live-status"))); !strings.Contains(text, "lost the hub") {
		t.Errorf("with the hub gone the page says %q", text)
	}
	must("append", "deploy", "while-away.example.org", "--version", "1")
	hub.start()
	c.do(t, "the hub back", chromedp.WaitReady(css(`body[data-live="ok"]`)), chromedp.WaitVisible(css(`tr[data-ref="coop/prod/while-away.example.org"]`)))

	// Signed out, the page is the sign-in page again, and stays so.
	c.do(t, "sign out", chromedp.Click(css(`form[action="/logout"] button`)))
	c.until(t, "signed out", `location.pathname === "/login" && document.readyState === "complete"`)
	c.do(t, "after signing out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#token")))
}
