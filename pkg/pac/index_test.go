package pac

import (
	"slices"
	"testing"
	"time"
)

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://Forge.Example/Org/Repo":      "https://forge.example/Org/Repo",
		"https://forge.example/org/repo/":     "https://forge.example/org/repo",
		"https://forge.example/org/repo.git":  "https://forge.example/org/repo",
		"http://u:p@forge.example/org/repo?x": "http://forge.example/org/repo",
		"https://forge.example":               "",
		"ssh://forge.example/org/repo":        "",
		"not a url":                           "",
		"":                                    "",
	} {
		if got := NormalizeURL(in); got != want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIndexHolder(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	const url = "https://forge.example/org/repo"
	a := Claim{Key: "a|ns/r", Workspace: "a", Created: t0}
	b := Claim{Key: "b|ns/r", Workspace: "b", Created: t0.Add(time.Minute)}
	c := Claim{Key: "c|ns/r", Workspace: "c", Created: t0.Add(time.Minute)}
	for _, tc := range []struct {
		name   string
		steps  func(x *Index)
		holder string
		claims []string
	}{
		{name: "the oldest holds", steps: func(x *Index) { x.Set(b, url); x.Set(a, url+"/") }, holder: "a|ns/r", claims: []string{"a|ns/r", "b|ns/r"}},
		{name: "ties go by key", steps: func(x *Index) { x.Set(c, url); x.Set(b, url) }, holder: "b|ns/r", claims: []string{"b|ns/r", "c|ns/r"}},
		{name: "the holder deleted: the next holds", steps: func(x *Index) { x.Set(a, url); x.Set(b, url); x.Delete(a.Key) }, holder: "b|ns/r", claims: []string{"b|ns/r"}},
		{name: "the holder moves to another URL", steps: func(x *Index) { x.Set(a, url); x.Set(b, url); x.Set(a, url+"-2") }, holder: "b|ns/r", claims: []string{"b|ns/r"}},
		{name: "an update keeps one claim", steps: func(x *Index) { x.Set(a, url); x.Set(a, url) }, holder: "a|ns/r", claims: []string{"a|ns/r"}},
		{name: "an invalid URL claims nothing", steps: func(x *Index) { x.Set(a, url); x.Set(a, "not a url") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex()
			tc.steps(x)
			h, ok := x.Holder(url)
			if ok != (tc.holder != "") || h.Key != tc.holder {
				t.Errorf("holder %q (%v), want %q", h.Key, ok, tc.holder)
			}
			var keys []string
			for _, c := range x.Claims(url) {
				keys = append(keys, c.Key)
			}
			if !slices.Equal(keys, tc.claims) {
				t.Errorf("claims %v, want %v", keys, tc.claims)
			}
		})
	}
}

func TestIndexSetReportsChangedURLs(t *testing.T) {
	x := NewIndex()
	a := Claim{Key: "a|ns/r", Workspace: "a"}
	if got := x.Set(a, "https://f/o/one"); !slices.Equal(got, []string{"https://f/o/one"}) {
		t.Errorf("first claim: %v", got)
	}
	if got := x.Set(a, "https://f/o/two"); !slices.Equal(got, []string{"https://f/o/one", "https://f/o/two"}) {
		t.Errorf("moved claim: %v, want both URLs (the old one's claimants may now hold it)", got)
	}
	x.SetWebhookSecret(a.Key, []byte("s"))
	if got := x.Delete(a.Key); got != "https://f/o/two" {
		t.Errorf("Delete returned %q", got)
	}
	if _, ok := x.WebhookSecret(a.Key); ok {
		t.Errorf("a deleted Repository's webhook secret is kept")
	}
}
