package pac

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Event is a forge event whose signature the intake verified, for the
// Repository that holds its URL.
type Event struct {
	Claim    Claim
	Header   http.Header
	Payload  []byte
	Type     string // X-Gitea-Event-Type
	Delivery string // X-Gitea-Delivery
}

// Handler processes verified events (Runner).
type Handler interface {
	Handle(ctx context.Context, ev Event)
}

// Intake is the service's one webhook endpoint. For each request, in
// this order and without asking kcp or the forge anything: the payload's
// repository URL is looked up in the Index, the payload's signature is
// checked with that Repository's webhook secret (kept by the Repository
// reconciler), and only a verified event is queued for Handler. A request
// is answered at once: 202 when queued, 4xx saying what is wrong (nothing
// is processed), 503 when the queue is full.
type Intake struct {
	index   *Index
	handler Handler
	log     *zap.SugaredLogger
	queue   chan Event
	wg      sync.WaitGroup
}

// NewIntake returns an Intake with workers processing events; they stop
// when ctx ends (Wait waits for them).
func NewIntake(ctx context.Context, index *Index, handler Handler, workers, backlog int, log *zap.SugaredLogger) *Intake {
	in := &Intake{index: index, handler: handler, log: log, queue: make(chan Event, backlog)}
	for range workers {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-in.queue:
					handler.Handle(ctx, ev)
				}
			}
		}()
	}
	return in
}

// Wait waits for the workers to stop.
func (in *Intake) Wait() { in.wg.Wait() }

// httpError is an answer that is not 202.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP verifies and queues one event.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := in.verify(w, r)
	if err == nil {
		select {
		case in.queue <- ev:
		default:
			err = fail(http.StatusServiceUnavailable, "too many events are being processed; deliver this one again later")
		}
	}
	if err != nil {
		code := http.StatusInternalServerError
		var he *httpError
		if errors.As(err, &he) {
			code = he.code
		}
		in.log.Infow("webhook refused", "code", code, "reason", err.Error(), "delivery", r.Header.Get("X-Gitea-Delivery"))
		writeMessage(w, code, err.Error())
		return
	}
	in.log.Infow("webhook accepted", "workspace", ev.Claim.Workspace, "repository", ev.Claim.Key, "event", ev.Type, "delivery", ev.Delivery)
	writeMessage(w, http.StatusAccepted, "accepted")
}

// verify reads the request and checks it as ServeHTTP says.
func (in *Intake) verify(w http.ResponseWriter, r *http.Request) (Event, error) {
	if r.Method != http.MethodPost {
		return Event{}, fail(http.StatusMethodNotAllowed, "forges POST their events here")
	}
	eventType := r.Header.Get("X-Gitea-Event-Type")
	if eventType == "" {
		return Event{}, fail(http.StatusBadRequest, "not a Gitea event (no X-Gitea-Event-Type header): this endpoint serves Gitea webhooks")
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayload))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return Event{}, fail(http.StatusRequestEntityTooLarge, "payload larger than %d bytes", MaxPayload)
		}
		return Event{}, fail(http.StatusBadRequest, "reading the payload: %v", err)
	}
	var head struct {
		Repository struct {
			HTMLURL string `json:"html_url"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return Event{}, fail(http.StatusBadRequest, "payload is not JSON: %v", err)
	}
	if NormalizeURL(head.Repository.HTMLURL) == "" {
		return Event{}, fail(http.StatusBadRequest, "payload names no repository (repository.html_url)")
	}
	claim, ok := in.index.Holder(head.Repository.HTMLURL)
	if !ok {
		return Event{}, fail(http.StatusNotFound, "no Repository claims %s", head.Repository.HTMLURL)
	}
	secret, ok := in.index.WebhookSecret(claim.Key)
	if !ok {
		return Event{}, fail(http.StatusForbidden, "the Repository of %s has no webhook secret (git_provider.webhook_secret): its events are refused", head.Repository.HTMLURL)
	}
	if !validSignature(secret, payload, r.Header.Get("X-Gitea-Signature")) {
		return Event{}, fail(http.StatusUnauthorized, "signature (X-Gitea-Signature) does not match the payload and the Repository's webhook secret")
	}
	return Event{Claim: claim, Header: r.Header.Clone(), Payload: payload, Type: eventType, Delivery: r.Header.Get("X-Gitea-Delivery")}, nil
}

// validSignature checks Gitea's signature: the hex HMAC-SHA256 of the
// payload with the webhook secret.
func validSignature(secret, payload []byte, signature string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	return hmac.Equal(got, mac.Sum(nil))
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
