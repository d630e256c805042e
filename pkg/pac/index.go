package pac

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Claim is a Repository's claim on its URL: where it lives and when it
// was created.
type Claim struct {
	// Key is the Repository's cluster-aware key
	// (<workspace>|<namespace>/<name>).
	Key       string
	Workspace string
	Created   time.Time
}

// before orders claims: the oldest Repository holds a URL (as PaC's
// matcher prefers the oldest), the key breaks ties.
func (c Claim) before(o Claim) bool {
	if !c.Created.Equal(o.Created) {
		return c.Created.Before(o.Created)
	}
	return c.Key < o.Key
}

// Index holds, for every Repository URL of every workspace, the
// Repositories that claim it. The oldest claim holds the URL: events for
// it go to that Repository alone, every later claim is refused. The
// controller keeps it from its informer, so that the webhook intake finds a
// Repository without asking kcp.
type Index struct {
	mu     sync.RWMutex
	byURL  map[string][]Claim
	urlOf  map[string]string // key → normalized URL
	secret map[string][]byte // key → webhook secret
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{byURL: map[string][]Claim{}, urlOf: map[string]string{}, secret: map[string][]byte{}}
}

// NormalizeURL is the form URLs are compared in: scheme and host in lower
// case, no trailing slash or ".git", no user, query or fragment. The
// empty string is not a repository URL.
func NormalizeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), ".git")
	if path == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + path
}

// Set records the claim of the Repository c.Key on rawURL (replacing its
// claim on any other URL) and returns the URLs whose holder may have
// changed.
func (x *Index) Set(c Claim, rawURL string) []string {
	u := NormalizeURL(rawURL)
	x.mu.Lock()
	defer x.mu.Unlock()
	old, had := x.urlOf[c.Key]
	changed := []string{}
	if had && old != u {
		x.remove(c.Key, old)
		changed = append(changed, old)
	}
	if u == "" {
		delete(x.urlOf, c.Key)
		return changed
	}
	claims := slices.DeleteFunc(x.byURL[u], func(o Claim) bool { return o.Key == c.Key })
	i, _ := slices.BinarySearchFunc(claims, c, func(a, b Claim) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	x.byURL[u] = slices.Insert(claims, i, c)
	x.urlOf[c.Key] = u
	return append(changed, u)
}

// Delete forgets the Repository of key and returns the URL it claimed
// ("" if none).
func (x *Index) Delete(key string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	u := x.urlOf[key]
	if u != "" {
		x.remove(key, u)
	}
	delete(x.urlOf, key)
	delete(x.secret, key)
	return u
}

func (x *Index) remove(key, u string) {
	claims := slices.DeleteFunc(x.byURL[u], func(o Claim) bool { return o.Key == key })
	if len(claims) == 0 {
		delete(x.byURL, u)
		return
	}
	x.byURL[u] = claims
}

// Holder is the claim holding rawURL.
func (x *Index) Holder(rawURL string) (Claim, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	claims := x.byURL[NormalizeURL(rawURL)]
	if len(claims) == 0 {
		return Claim{}, false
	}
	return claims[0], true
}

// Claims are the claims on rawURL, the holder first.
func (x *Index) Claims(rawURL string) []Claim {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.byURL[NormalizeURL(rawURL)])
}

// SetWebhookSecret keeps the webhook secret of the Repository of key, read
// from its namespace when it was reconciled (nil: it has none).
func (x *Index) SetWebhookSecret(key string, secret []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if secret == nil {
		delete(x.secret, key)
		return
	}
	x.secret[key] = secret
}

// WebhookSecret is the webhook secret of the Repository of key.
func (x *Index) WebhookSecret(key string) ([]byte, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.secret[key]
	return s, ok
}
