package pac

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

type recorded struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func (r *recorded) Handle(_ context.Context, ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.done <- struct{}{}
}

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestIntake(t *testing.T) {
	const url = "https://forge.example/org/repo"
	body := `{"repository":{"html_url":"` + url + `"}}`
	x := NewIndex()
	x.Set(Claim{Key: "ws|ns/repo", Workspace: "ws"}, url)
	x.SetWebhookSecret("ws|ns/repo", []byte("s3cret"))
	x.Set(Claim{Key: "ws|ns/nosecret", Workspace: "ws"}, "https://forge.example/org/other")
	for _, tc := range []struct {
		name, method, eventType, signature, body string
		want                                     int
		msg                                      string
	}{
		{name: "signed", eventType: "push", signature: sign("s3cret", body), body: body, want: http.StatusAccepted},
		{name: "GET", method: http.MethodGet, eventType: "push", body: body, want: http.StatusMethodNotAllowed},
		{name: "not Gitea", signature: sign("s3cret", body), body: body, want: http.StatusBadRequest, msg: "X-Gitea-Event-Type"},
		{name: "not JSON", eventType: "push", body: "x", want: http.StatusBadRequest, msg: "JSON"},
		{name: "no repository", eventType: "push", body: `{}`, want: http.StatusBadRequest, msg: "html_url"},
		{name: "unclaimed", eventType: "push", body: `{"repository":{"html_url":"https://forge.example/a/b"}}`, want: http.StatusNotFound},
		{name: "no webhook secret", eventType: "push", body: `{"repository":{"html_url":"https://forge.example/org/other"}}`, want: http.StatusForbidden},
		{name: "unsigned", eventType: "push", body: body, want: http.StatusUnauthorized, msg: "signature"},
		{name: "wrong secret", eventType: "push", signature: sign("other", body), body: body, want: http.StatusUnauthorized},
		{name: "signature of another body", eventType: "push", signature: sign("s3cret", body+" "), body: body, want: http.StatusUnauthorized},
		{name: "not hex", eventType: "push", signature: "zz", body: body, want: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := &recorded{done: make(chan struct{}, 1)}
			in := NewIntake(ctx, x, h, 1, 1, zap.NewNop().Sugar())
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, PathPrefix, strings.NewReader(tc.body))
			if tc.eventType != "" {
				req.Header.Set("X-Gitea-Event-Type", tc.eventType)
			}
			if tc.signature != "" {
				req.Header.Set("X-Gitea-Signature", tc.signature)
			}
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Fatalf("%d %s, want %d mentioning %q", rec.Code, rec.Body, tc.want, tc.msg)
			}
			if tc.want != http.StatusAccepted {
				return
			}
			select {
			case <-h.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the accepted event was not handled")
			}
			if ev := h.events[0]; ev.Claim.Key != "ws|ns/repo" || ev.Type != "push" || string(ev.Payload) != tc.body {
				t.Errorf("handled %+v", ev)
			}
		})
	}
}
