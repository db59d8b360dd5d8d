package portal

import (
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
)

// Browser tests: headless Chromium driven over the DevTools protocol walks
// a subscriber from sign-up to a downloaded certificate chain and a
// revocation, and a reviewer (in a second browser context, so with its own
// cookies) through the approval of an OV order. Screenshots taken along
// the way become docs/img/portal-*.png with -update or
// TRUSTLINE_SCREENSHOTS=1:
//
//	go test ./issuer/portal -run TestBrowser -update

var update = flag.Bool("update", false, "write the browser tests' screenshots to docs/img/")

const chromiumPath = "/usr/bin/chromium"

// shots collects screenshots and writes them to docs/img when asked.
type shots struct {
	dir   string // "" : keep them in memory only
	taken []string
}

func newShots(t *testing.T) *shots {
	s := &shots{}
	if *update || os.Getenv("TRUSTLINE_SCREENSHOTS") == "1" {
		s.dir = filepath.Join("..", "..", "docs", "img")
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// take captures the whole page as PNG.
func (s *shots) take(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	s.taken = append(s.taken, name)
	if s.dir != "" {
		if err := os.WriteFile(filepath.Join(s.dir, "portal-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startChromium launches headless Chromium with the flags that keep it off
// the network (it would otherwise call Google's services) and a fresh
// profile.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "Chromium at "+chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium keeps shared memory files in TMPDIR (see
		// disable-dev-shm-usage): keep them where the test cleans up.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	// One deadline for the whole walk: a hung browser fails the test
	// instead of the test binary's 10-minute timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(cancelB)
	if err := chromedp.Do(bctx); err != nil {
		testenv.Missing(t, "a working headless Chromium", err)
	}
	return bctx
}

// do runs steps and fails the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// submit clicks a submit button and waits for the page it leads to (after
// the redirect, if any).
func submit(t *testing.T, ctx context.Context, what string, button chromedp.CSS) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(button)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mainText is the visible text of the page's main landmark.
func mainText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

func wantText(t *testing.T, ctx context.Context, what string, subs ...string) {
	t.Helper()
	got := mainText(t, ctx)
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Fatalf("%s: the page does not say %q; it says:\n%s", what, s, got)
		}
	}
}

func TestBrowserSubscriberAndReviewer(t *testing.T) {
	start := time.Now()
	ctx := startChromium(t)
	e := newEnv(t)
	shot := newShots(t)
	reviewerKey := e.account(t, "reviewer@ca.example", store.RoleReviewer)
	base := e.srv.URL

	// Sign up, see the API key once, sign out.
	do(t, ctx, "open the portal", chromedp.Navigate(base+"/"))
	wantText(t, ctx, "sign-in page", "Sign in to Trustline", "With your API key", "With an email link", "Create an account")
	shot.take(t, ctx, "signin")
	do(t, ctx, "fill sign-up", chromedp.SendKeys(chromedp.ID("signup_email"), "alice@example.com"))
	submit(t, ctx, "sign up", `form[action="/signup"] button`)
	key, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("key")))
	if err != nil || !strings.HasPrefix(key, "tl_") {
		t.Fatalf("API key on the welcome page: %q, %v", key, err)
	}
	wantText(t, ctx, "welcome", "Your account is ready", "It is shown only now", "mailed a confirmation link")
	shot.take(t, ctx, "welcome")
	// The address is confirmed by the mailed link before it gets anything else.
	do(t, ctx, "open the confirmation link", chromedp.Navigate(e.lastMatch(t, "alice@example.com", confirmLinkRE)))
	wantText(t, ctx, "address confirmed", "alice@example.com is confirmed")
	do(t, ctx, "back", chromedp.Navigate(base+"/"))
	submit(t, ctx, "sign out", `form[action="/signout"] button`)
	wantText(t, ctx, "signed out", "You are signed out")

	// Sign in with a mailed link.
	do(t, ctx, "fill email sign-in", chromedp.SendKeys(chromedp.ID("email"), "alice@example.com"))
	submit(t, ctx, "ask for a link", `form[action="/signin/email"] button`)
	wantText(t, ctx, "link sent", "Check your mail")
	link := e.lastMatch(t, "alice@example.com", linkRE)
	do(t, ctx, "open the link", chromedp.Navigate(link))
	wantText(t, ctx, "link page", "Sign in as alice@example.com?")
	submit(t, ctx, "confirm sign-in", `form[action="/signin/link"] button`)
	wantText(t, ctx, "dashboard", "Dashboard", "No validated domains yet")

	// Validations Wizard: email to admin@example.com, code from the mail.
	do(t, ctx, "open the Validations Wizard", chromedp.Navigate(base+"/validations/new"),
		chromedp.SendKeys(chromedp.ID("domain"), "example.com"),
		chromedp.Click(chromedp.ID("method-email")),
		chromedp.SetValue(chromedp.ID("local"), "admin"))
	shot.take(t, ctx, "validation-wizard")
	submit(t, ctx, "start validation", `form[action="/validations"] button`)
	wantText(t, ctx, "code page", "We mailed a validation code to admin@example.com", "Enter the code we mailed")
	shot.take(t, ctx, "validation-code")
	do(t, ctx, "enter the code", chromedp.SendKeys(chromedp.ID("code"), e.lastMatch(t, "admin@example.com", codeRE)))
	submit(t, ctx, "confirm code", `main form button`)
	wantText(t, ctx, "validated", "example.com is validated")
	shot.take(t, ctx, "validation-valid")

	// Certificates Wizard: a name outside the chosen domain is refused with
	// a clear message; then a DV order with a pasted CSR is issued.
	do(t, ctx, "open the Certificates Wizard", chromedp.Navigate(base+"/orders/new"),
		chromedp.Click(chromedp.CSS(`input[name="domain"][value="example.com"]`)),
		chromedp.SetValue(chromedp.ID("csr"), csrPEM(t, "example.com", "shop.example.org")))
	submit(t, ctx, "bad order", `form[action="/orders"] > button`)
	wantText(t, ctx, "refused order", "There is a problem", "shop.example.org, which is not under the domain(s) you chose")
	shot.take(t, ctx, "order-error")
	do(t, ctx, "fix the order",
		chromedp.SetValue(chromedp.ID("names"), "example.com www.example.com"),
		chromedp.SetValue(chromedp.ID("csr"), csrPEM(t, "example.com", "www.example.com")))
	shot.take(t, ctx, "order-wizard")
	submit(t, ctx, "DV order", `form[action="/orders"] > button`)
	wantText(t, ctx, "issued", "Your certificate is issued", "issued")
	shot.take(t, ctx, "order-issued")

	// Download the PEM chain through the browser.
	chain := downloadChain(t, ctx)
	if len(chain) != 2 || !slices.Equal(chain[0].DNSNames, []string{"example.com", "www.example.com"}) {
		t.Fatalf("downloaded chain: %d certificates, leaf names %v", len(chain), chain[0].DNSNames)
	}
	if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
		t.Fatalf("leaf not signed by the intermediate in the chain: %v", err)
	}
	dvOrder, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}

	// An OV order goes to the CMS.
	do(t, ctx, "OV order", chromedp.Navigate(base+"/orders/new"),
		chromedp.Click(chromedp.CSS(`input[name="domain"][value="example.com"]`)),
		chromedp.Click(chromedp.ID("profile-ov")),
		chromedp.SendKeys(chromedp.ID("org_name"), "Example Ltd"),
		chromedp.SendKeys(chromedp.ID("org_country"), "GB"),
		chromedp.SendKeys(chromedp.ID("org_locality"), "London"),
		chromedp.SetValue(chromedp.ID("csr"), csrPEM(t, "secure.example.com")))
	submit(t, ctx, "place OV order", `form[action="/orders"] > button`)
	wantText(t, ctx, "pending", "waiting for review", "pending_review", "Example Ltd, London, GB")
	ovOrder, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	shot.take(t, ctx, "order-pending")

	// The reviewer, in a browser context of their own, approves it.
	rctx, cancelR := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelR()
	do(t, rctx, "reviewer sign-in page", chromedp.Navigate(base+"/"), chromedp.SendKeys(chromedp.ID("api_key"), reviewerKey))
	submit(t, rctx, "reviewer signs in", `form[action="/signin"] button`)
	wantText(t, rctx, "queue", "Review queue", "secure.example.com", "alice@example.com", "profile ov")
	shot.take(t, rctx, "review-queue")
	ordID := ovOrder[strings.LastIndex(ovOrder, "/")+1:]
	if _, err := chromedp.RunResponse(rctx, chromedp.Click(chromedp.CSS(`a[href="/review/orders/`+ordID+`"]`))); err != nil {
		t.Fatalf("open the order: %v", err)
	}
	wantText(t, rctx, "order in review", "Approvals: 0 of 1", "Organization to verify", "Example Ltd",
		"Domain validation evidence", "admin@example.com")
	do(t, rctx, "fill the approval",
		chromedp.SendKeys(chromedp.ID("evidence_source"), "Companies House register"),
		chromedp.SendKeys(chromedp.ID("evidence_reference"), "01234567"),
		chromedp.SendKeys(chromedp.ID("notes"), "Name and address match the register."))
	shot.take(t, rctx, "review-order")
	submit(t, rctx, "approve", `form[action$="/approve"] button`)
	wantText(t, rctx, "approved", "Approved (1 of 1). The certificate is issued")
	shot.take(t, rctx, "review-approved")

	// An EV order: the first approval leaves it waiting for a second,
	// different reviewer, and the console says so.
	do(t, ctx, "EV order", chromedp.Navigate(base+"/orders/new"),
		chromedp.Click(chromedp.CSS(`input[name="domain"][value="example.com"]`)),
		chromedp.Click(chromedp.ID("profile-ev")),
		chromedp.SendKeys(chromedp.ID("org_name"), "Example Bank plc"),
		chromedp.SendKeys(chromedp.ID("org_country"), "GB"),
		chromedp.SendKeys(chromedp.ID("org_locality"), "London"),
		chromedp.SetValue(chromedp.ID("org_business_category"), "Private Organization"),
		chromedp.SendKeys(chromedp.ID("org_registration_number"), "01234567"),
		chromedp.SendKeys(chromedp.ID("org_jurisdiction_country"), "GB"),
		chromedp.SetValue(chromedp.ID("csr"), csrPEM(t, "bank.example.com")))
	submit(t, ctx, "place EV order", `form[action="/orders"] > button`)
	wantText(t, ctx, "EV pending", "two different reviewers must approve an EV order")
	evOrder, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	evID := evOrder[strings.LastIndex(evOrder, "/")+1:]
	do(t, rctx, "open the EV order", chromedp.Navigate(base+"/review/orders/"+evID),
		chromedp.SendKeys(chromedp.ID("evidence_source"), "Companies House register"),
		chromedp.SendKeys(chromedp.ID("evidence_reference"), "01234567"))
	submit(t, rctx, "first EV approval", `form[action$="/approve"] button`)
	wantText(t, rctx, "first EV approval", "Approved (1 of 2)", "a different reviewer must give the second")
	shot.take(t, rctx, "review-ev-first")
	do(t, rctx, "queue", chromedp.Navigate(base+"/review"))
	wantText(t, rctx, "queue with EV state", "1 of 2", "needs a second reviewer")
	shot.take(t, rctx, "review-queue-ev")

	// The subscriber's session is untouched by the reviewer's, and sees the
	// order issued.
	do(t, ctx, "subscriber reloads the order", chromedp.Navigate(ovOrder))
	wantText(t, ctx, "OV issued", "issued", "Download certificate chain")

	// Revoke the DV certificate.
	do(t, ctx, "DV order page", chromedp.Navigate(dvOrder))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a[href^="/certificates/"]:not([download])`))); err != nil {
		t.Fatalf("open the certificate: %v", err)
	}
	do(t, ctx, "choose a reason", chromedp.SetValue(chromedp.ID("reason"), "keyCompromise"), chromedp.Click(chromedp.ID("confirm")))
	shot.take(t, ctx, "certificate")
	submit(t, ctx, "revoke", `form[action$="/revoke"] button`)
	wantText(t, ctx, "revoked", "The certificate is revoked (keyCompromise)")
	shot.take(t, ctx, "revoked")

	do(t, ctx, "dashboard", chromedp.Navigate(base+"/"))
	wantText(t, ctx, "dashboard", "example.com", "secure.example.com", "revoked")
	shot.take(t, ctx, "dashboard")

	t.Logf("browser walk: %d screenshots in %v (written: %v)", len(shot.taken), time.Since(start).Round(time.Millisecond), shot.dir != "")
}

// downloadChain clicks the page's chain download link and returns the
// certificates of the file the browser saved.
func downloadChain(t *testing.T, ctx context.Context) []*x509.Certificate {
	t.Helper()
	dir := t.TempDir()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	yes := true
	do(t, ctx, "download the chain",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &yes,
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`a[href$="/chain.pem"]`)))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
		if ev.State != cdpbrowser.DownloadProgressStateCompleted {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, ev.GUID))
		if err != nil {
			t.Fatal(err)
		}
		out := testfix.ParsePEMChain(t, raw)
		if len(out) == 0 {
			t.Fatalf("the downloaded file holds no certificate: %q", raw)
		}
		return out
	}
	t.Fatal("no download")
	return nil
}
