package portal

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Accessibility checks run on every HTML page the handler tests fetch
// (browser.do calls checkPage): landmarks, one h1, no skipped heading
// levels, a label for every control, described-by targets that exist,
// unique ids, a form token in every POST form, no script.

func checkPage(t testing.TB, path, body string) {
	t.Helper()
	for _, p := range pageProblems(body) {
		t.Errorf("%s: accessibility: %s", path, p)
	}
}

func pageProblems(body string) []string {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var (
		probs     []string
		ids       = map[string]int{}
		labelFor  = map[string]bool{}
		described []string
		controls  []string
		tags      = map[string]int{}
		lastLevel = 0
		lang      string
	)
	attr := func(n *html.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			tags[n.Data]++
			if id, ok := attr(n, "id"); ok {
				ids[id]++
			}
			switch n.Data {
			case "html":
				lang, _ = attr(n, "lang")
			case "h1", "h2", "h3", "h4", "h5", "h6":
				lv := int(n.Data[1] - '0')
				if lv > lastLevel+1 {
					probs = append(probs, fmt.Sprintf("heading <%s> follows <h%d>", n.Data, lastLevel))
				}
				lastLevel = lv
			case "label":
				if f, ok := attr(n, "for"); ok {
					labelFor[f] = true
				}
			case "input", "select", "textarea":
				typ, _ := attr(n, "type")
				if typ == "hidden" || typ == "submit" || typ == "button" {
					break
				}
				id, _ := attr(n, "id")
				if id == "" {
					probs = append(probs, fmt.Sprintf("<%s name=%q> has no id for a label", n.Data, must(attr(n, "name"))))
				}
				controls = append(controls, id)
			case "script", "iframe":
				probs = append(probs, "has a <"+n.Data+">")
			case "form":
				if m, _ := attr(n, "method"); m == "post" {
					hasToken := false
					var find func(*html.Node)
					find = func(c *html.Node) {
						if c.Type == html.ElementNode && c.Data == "input" {
							if nm, _ := attr(c, "name"); nm == "csrf" {
								if v, _ := attr(c, "value"); v != "" {
									hasToken = true
								}
							}
						}
						for k := c.FirstChild; k != nil; k = k.NextSibling {
							find(k)
						}
					}
					find(n)
					if !hasToken {
						act, _ := attr(n, "action")
						probs = append(probs, "POST form "+act+" has no csrf token")
					}
				}
			}
			if d, ok := attr(n, "aria-describedby"); ok {
				described = append(described, strings.Fields(d)...)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if lang == "" {
		probs = append(probs, "<html> has no lang")
	}
	if tags["h1"] != 1 {
		probs = append(probs, fmt.Sprintf("%d <h1> elements, want 1", tags["h1"]))
	}
	for _, lm := range []string{"main", "header", "footer", "title"} {
		if tags[lm] != 1 {
			probs = append(probs, fmt.Sprintf("%d <%s> elements, want 1", tags[lm], lm))
		}
	}
	for id, n := range ids {
		if n > 1 {
			probs = append(probs, fmt.Sprintf("id %q used %d times", id, n))
		}
	}
	for _, id := range controls {
		if id != "" && !labelFor[id] {
			probs = append(probs, fmt.Sprintf("control #%s has no <label for>", id))
		}
	}
	for _, id := range described {
		if ids[id] == 0 {
			probs = append(probs, fmt.Sprintf("aria-describedby names missing id %q", id))
		}
	}
	return probs
}

func must(s string, _ bool) string { return s }

// TestContrast checks the stylesheet's colour pairs against WCAG 2.2 AA
// (4.5:1 for text).
func TestContrast(t *testing.T) {
	css, err := assets.ReadFile("static/portal.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"white": "#ffffff"}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-f]{6})`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	pairs := [][2]string{
		{"ink", "paper"}, {"ink", "wash"}, {"muted", "paper"}, {"muted", "wash"}, {"brand", "paper"}, {"brand", "wash"},
		{"white", "brand"}, {"white", "brand-dark"}, {"white", "bad"}, {"ok", "ok-wash"}, {"warn", "warn-wash"},
		{"bad", "bad-wash"}, {"ink", "ok-wash"}, {"ink", "warn-wash"}, {"ink", "bad-wash"}, {"brand-dark", "white"},
	}
	for _, p := range pairs {
		t.Run(p[0]+" on "+p[1], func(t *testing.T) {
			fg, bg := vars[p[0]], vars[p[1]]
			if fg == "" || bg == "" {
				t.Fatalf("colour variable missing: %q=%q %q=%q", p[0], fg, p[1], bg)
			}
			if r := contrast(fg, bg); r < 4.5 {
				t.Errorf("contrast %s on %s is %.2f:1, want ≥ 4.5:1", fg, bg, r)
			}
		})
	}
}

// contrast is the WCAG 2.x contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}
