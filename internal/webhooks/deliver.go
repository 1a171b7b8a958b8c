package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Delivery is one attempt to deliver an event to an endpoint.
type Delivery struct {
	ID      int64  `json:"id"`
	Webhook string `json:"webhook_id"`
	Event   string `json:"event_id"`
	Type    string `json:"type"`
	Attempt int    `json:"attempt"`
	// Status is the response's status code; 0 when there was no response.
	Status    int   `json:"status"`
	Success   bool  `json:"success"`
	LatencyMS int64 `json:"latency_ms"`
	// Response is the start of the response body (at most 1 KiB).
	Response string    `json:"response"`
	Error    string    `json:"error,omitempty"`
	Created  time.Time `json:"created"`
}

// Limits on what a delivery keeps and reads of a response.
const (
	maxSnippet = 1024
	maxDrain   = 64 << 10
	maxErrText = 1024
)

// UserAgent is the User-Agent of deliveries.
const UserAgent = "Strata-Webhooks/1"

// Reasons an endpoint was disabled, in its DisabledReason and in metrics.
const (
	reasonGone     = "gone"
	reasonFailures = "failures"
)

// deliverJob runs one attempt of a delivery job. A 2xx completes the job;
// anything else fails the attempt and the queue retries it with its
// backoff. It ends without sending when the endpoint is gone or the event
// already reached it, and fails permanently when the endpoint is disabled
// (an operator may retry the dead job after enabling it again).
func (s *Service) deliverJob(ctx context.Context, job *jobs.Job, args deliverArgs) error {
	e, err := getEndpoint(store.ReadPrimary(ctx), s.db.Reader(), s.db.Dialect(), args.Webhook, false)
	if errors.Is(err, ErrNotFound) {
		s.log.InfoContext(ctx, "webhooks: endpoint deleted; delivery dropped", "webhook", args.Webhook, "event", args.Event)
		return nil
	}
	if err != nil {
		return err
	}
	if !e.Enabled {
		return jobs.Permanent(fmt.Errorf("webhook %s is disabled", e.ID))
	}
	done, err := delivered(store.ReadPrimary(ctx), s.db.Reader(), s.db.Dialect(), e.ID, args.Event)
	if err != nil {
		return err
	}
	if done {
		return nil
	}
	d := s.send(ctx, e, args.Event, args.Type, args.Payload, args.Trace)
	d.Attempt = job.Attempt
	disabled, err := s.record(ctx, e, d)
	if err != nil {
		return err
	}
	switch {
	case d.Success:
		return nil
	case disabled != "":
		return jobs.Permanent(fmt.Errorf("%s; the endpoint is now disabled", d.Error))
	}
	return errors.New(d.Error)
}

// send makes one delivery request. The outcome, success or not, is in the
// returned Delivery; it is not yet logged.
func (s *Service) send(ctx context.Context, e *Endpoint, eventID, typ string, body []byte, traceHeaders map[string]string) *Delivery {
	d := &Delivery{Webhook: e.ID, Event: eventID, Type: typ, Attempt: 1}
	ctx = telemetry.Propagator.Extract(ctx, propagation.MapCarrier(traceHeaders))
	ctx, span := s.tracer.Start(ctx, "webhook deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("webhook.id", e.ID), attribute.String("webhook.event_id", eventID),
			attribute.String("webhook.type", typ)))
	defer span.End()

	start := time.Now()
	defer func() {
		d.Created = time.Now().UTC()
		d.LatencyMS = time.Since(start).Milliseconds()
		s.m.observe(d, time.Since(start))
		span.SetAttributes(attribute.Int("http.response.status_code", d.Status))
		if !d.Success {
			span.SetStatus(codes.Error, d.Error)
		}
	}()
	sig, err := Sign(e.secret, eventID, start, body)
	if err != nil {
		d.Error = "sign: " + err.Error()
		return d
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		d.Error = "build request: " + err.Error()
		return d
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set("webhook-id", eventID)
	h.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	h.Set("webhook-signature", sig)
	telemetry.Propagator.Inject(ctx, propagation.HeaderCarrier(h))
	resp, err := s.client.Do(req)
	if err != nil {
		d.Error = requestError(err, s.cfg.Timeout)
		return d
	}
	defer resp.Body.Close()
	d.Status = resp.StatusCode
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)) // lets the connection be reused
	d.Response = validUTF8(snippet)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		d.Success = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		d.Error = fmt.Sprintf("status %d: redirects are not followed (Location %q); register the final URL", resp.StatusCode, resp.Header.Get("Location"))
	default:
		d.Error = fmt.Sprintf("status %d", resp.StatusCode)
	}
	return d
}

// requestError describes a failed request without the URL (which the
// delivery log already shows through its endpoint).
func requestError(err error, timeout time.Duration) string {
	var be *BlockedError
	switch {
	case errors.As(err, &be):
		return "refused: " + be.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %v", timeout)
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	return truncate(err.Error(), maxErrText)
}

func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// record logs a delivery attempt and updates the endpoint's failure count
// in one transaction: a success resets it; a failure adds one, and the
// endpoint is disabled, with an audit entry, on a 410 Gone or once
// DisableAfter attempts in a row have failed. It returns the reason the
// endpoint was disabled by this attempt, or "".
func (s *Service) record(ctx context.Context, e *Endpoint, d *Delivery) (string, error) {
	var disabled string
	// The attempt happened: log it even if the job's context ended.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.db.Write(wctx, func(tx *store.Tx) error {
		disabled = ""
		if err := insertDelivery(wctx, tx, d); err != nil {
			return err
		}
		a := newArgs(tx.Dialect)
		if d.Success {
			_, err := tx.ExecContext(wctx, `UPDATE _webhooks SET failures = 0 WHERE id = `+a.Add(e.ID)+` AND failures <> 0`, a.Values...)
			return err
		}
		var failures, enabled int
		err := tx.QueryRowContext(wctx, `UPDATE _webhooks SET failures = failures + 1 WHERE id = `+a.Add(e.ID)+` RETURNING failures, enabled`, a.Values...).
			Scan(&failures, &enabled)
		if err != nil {
			return fmt.Errorf("count webhook failure: %w", err)
		}
		switch {
		case enabled == 0:
			return nil
		case d.Status == http.StatusGone:
			disabled = reasonGone
		case failures >= s.cfg.DisableAfter:
			disabled = reasonFailures
		default:
			return nil
		}
		a = newArgs(tx.Dialect)
		if _, err := tx.ExecContext(wctx, `UPDATE _webhooks SET enabled = 0, disabled_reason = `+a.Add(disabled)+`, updated = `+
			a.Add(store.Stamp(time.Now()))+` WHERE id = `+a.Add(e.ID), a.Values...); err != nil {
			return fmt.Errorf("disable webhook: %w", err)
		}
		detail := map[string]any{"url": e.URL, "reason": disabled, "failures": failures, "status": d.Status, "error": d.Error}
		return audit.Append(wctx, tx, audit.Event{Event: "webhook.disabled", Target: e.ID, Detail: detail})
	})
	if err != nil {
		return "", fmt.Errorf("record webhook delivery: %w", err)
	}
	if disabled != "" {
		s.m.disabled.WithLabelValues(disabled).Inc()
		s.log.WarnContext(ctx, "webhooks: endpoint disabled", "webhook", e.ID, "url", e.URL, "reason", disabled, "status", d.Status, "err", d.Error)
	}
	return disabled, nil
}

// Test sends a webhook.test event to an endpoint now, enabled or not, and
// returns the attempt, which is logged with the endpoint's deliveries. A
// test does not change the endpoint's failure count. It returns
// ErrNotFound.
func (s *Service) Test(ctx context.Context, id string) (*Delivery, error) {
	e, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	body, err := json.Marshal(Payload{Type: TypeTest, Timestamp: now.Format(time.RFC3339Nano), Data: map[string]string{"webhook_id": e.ID}})
	if err != nil {
		return nil, err
	}
	eventID := "test_" + uuid.Must(uuid.NewV7()).String()
	carrier := propagation.MapCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	d := s.send(ctx, e, eventID, TypeTest, body, carrier)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = s.db.Write(wctx, func(tx *store.Tx) error { return insertDelivery(wctx, tx, d) })
	if err != nil {
		return nil, err
	}
	return d, nil
}

// prune deletes delivery logs older than the retention.
func (s *Service) prune(ctx context.Context) error {
	return s.db.Write(ctx, func(tx *store.Tx) error {
		a := newArgs(tx.Dialect)
		_, err := tx.ExecContext(ctx, `DELETE FROM _webhook_deliveries WHERE created < `+a.Add(store.Stamp(time.Now().Add(-s.cfg.Retention))), a.Values...)
		if err != nil {
			return fmt.Errorf("prune webhook deliveries: %w", err)
		}
		return nil
	})
}
