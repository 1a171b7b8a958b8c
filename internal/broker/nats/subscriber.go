package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-dev/strata/internal/broker"
)

// Timings of a subscriber's pull requests. The heartbeat lets the client
// notice within two heartbeats that a pull went unanswered (a server
// restarting, a consumer not loaded yet) and pull again.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
	// drainWait bounds how long Close waits for buffered messages to be
	// released before it drops them (they are redelivered after AckWait).
	drainWait = 5 * time.Second
	// recreateWait is the pause between attempts to recreate a lost
	// consumer.
	recreateWait = 500 * time.Millisecond
)

// subscriber runs one subscription: a pull consumer and the goroutine
// that restarts it when the server loses the consumer.
type subscriber struct {
	b       *Broker
	sub     broker.Subscription
	handler broker.Handler

	ctx    context.Context // the subscription's life; handlers get it
	cancel context.CancelFunc
	lost   chan struct{} // the consumer is gone from the server
	done   chan struct{} // run has returned

	mu       sync.Mutex
	consumer string              // the consumer's name
	lastAck  uint64              // highest stream sequence acknowledged
	failed   map[uint64]struct{} // sequences waiting for redelivery
}

// Subscribe implements broker.Broker.
func (b *Broker) Subscribe(ctx context.Context, sub broker.Subscription, handler broker.Handler) (broker.Subscriber, error) {
	if b.closed.Load() {
		return nil, broker.ErrClosed
	}
	if err := broker.ValidateSubscription(sub); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if handler == nil {
		return nil, fmt.Errorf("subscribe: %w: nil handler", broker.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	sub.Topics = append([]string(nil), sub.Topics...)
	s := &subscriber{
		b:       b,
		sub:     sub,
		handler: handler,
		lost:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		failed:  make(map[uint64]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	cc, err := s.start(ctx, sub.From)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if !b.track(s) {
		cc.Stop()
		s.cancel()
		s.deleteFanout()
		return nil, broker.ErrClosed
	}
	go s.run(cc)
	return s, nil
}

// Close implements broker.Subscriber.
func (s *subscriber) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run waits for the end of the subscription, restarting the consumer if
// the server loses it.
func (s *subscriber) run(cc jetstream.ConsumeContext) {
	defer close(s.done)
	defer s.b.untrack(s)
	for {
		select {
		case <-s.ctx.Done():
			s.stop(cc)
			s.deleteFanout()
			return
		case <-s.lost:
		}
		s.b.log.Warn("nats: consumer lost; recreating it", "group", s.sub.Group, "consumer", s.consumerName())
		s.stop(cc)
		for {
			var err error
			if cc, err = s.start(s.ctx, s.resumeFrom()); err == nil {
				break
			}
			s.b.log.Warn("nats: recreate consumer", "group", s.sub.Group, "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(recreateWait):
			}
		}
	}
}

// stop drains cc: buffered messages reach handle, which releases them for
// immediate redelivery since the subscription is ending.
func (s *subscriber) stop(cc jetstream.ConsumeContext) {
	cc.Drain()
	t := time.NewTimer(drainWait)
	defer t.Stop()
	select {
	case <-cc.Closed():
	case <-t.C:
		cc.Stop()
		<-cc.Closed()
	}
}

// start creates or binds the consumer and starts consuming.
func (s *subscriber) start(ctx context.Context, from broker.Position) (jetstream.ConsumeContext, error) {
	c, err := s.consumerFor(ctx, from)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.consumer = c.CachedInfo().Name
	s.mu.Unlock()
	cc, err := c.Consume(s.handle,
		jetstream.PullMaxMessages(s.b.cfg.Prefetch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(s.consumeError),
	)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return cc, nil
}

// consumerFor creates the subscription's consumer, or for a group that
// exists already, binds to it, keeping its position.
func (s *subscriber) consumerFor(ctx context.Context, from broker.Position) (jetstream.Consumer, error) {
	cfg := s.consumerConfig(from)
	js, stream := s.b.js, s.b.cfg.Stream
	if s.sub.Group == "" {
		c, err := js.CreateConsumer(ctx, stream, cfg)
		if err != nil {
			return nil, fmt.Errorf("create consumer: %w", wrapUnavailable(err))
		}
		return c, nil
	}
	for range 3 {
		c, err := js.Consumer(ctx, stream, s.sub.Group)
		switch {
		case err == nil:
			// The group exists: keep where it starts, update the rest.
			old := c.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
			c, err = js.UpdateConsumer(ctx, stream, cfg)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("update group %s: %w", s.sub.Group, wrapUnavailable(err))
			}
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			c, err = js.CreateConsumer(ctx, stream, cfg)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, jetstream.ErrConsumerExists) {
				return nil, fmt.Errorf("create group %s: %w", s.sub.Group, wrapUnavailable(err))
			}
		default:
			return nil, fmt.Errorf("group %s: %w", s.sub.Group, wrapUnavailable(err))
		}
		// Another member created or deleted the group meanwhile: look again.
	}
	return nil, fmt.Errorf("group %s: created and deleted concurrently", s.sub.Group)
}

func (s *subscriber) consumerConfig(from broker.Position) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:    s.sub.Group,
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    s.sub.AckWait,
		MaxDeliver: -1,
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if s.sub.Group == "" {
		cfg.InactiveThreshold = s.b.cfg.FanoutIdle
	}
	subjects := make([]string, len(s.sub.Topics))
	for i, t := range s.sub.Topics {
		subjects[i] = s.b.subject(t)
	}
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	switch {
	case from.IsBeginning():
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case from.IsNew():
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	default:
		if seq, ok := from.Seq(); ok {
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = seq
		} else if t, ok := from.Time(); ok {
			cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
			cfg.OptStartTime = &t
		}
	}
	return cfg
}

// resumeFrom is where a recreated consumer starts: a lost group restarts
// from the subscription's From (its position went with it); a fan-out
// subscription resumes at its oldest unfinished message.
func (s *subscriber) resumeFrom() broker.Position {
	if s.sub.Group != "" {
		return s.sub.From
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAck == 0 && len(s.failed) == 0 {
		return s.sub.From
	}
	next := s.lastAck + 1
	for seq := range s.failed {
		next = min(next, seq)
	}
	return broker.AtSeq(next)
}

func (s *subscriber) consumerName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumer
}

func (s *subscriber) consumeError(_ jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		select {
		case s.lost <- struct{}{}:
		default:
		}
	case errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, jetstream.ErrConnectionClosed):
		s.b.log.Debug("nats: consume", "consumer", s.consumerName(), "err", err)
	default:
		s.b.log.Warn("nats: consume", "consumer", s.consumerName(), "err", err)
	}
}

// handle runs the handler on one message and acknowledges it, or asks for
// its redelivery.
func (s *subscriber) handle(m jetstream.Msg) {
	if s.ctx.Err() != nil {
		m.Nak() // ending: release it to another member at once
		return
	}
	d, err := s.delivery(m)
	if err != nil {
		s.b.log.Error("nats: malformed delivery; dropping it", "subject", m.Subject(), "err", err)
		m.Term()
		return
	}
	err = s.call(d)
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			s.b.log.Debug("nats: ack", "seq", d.Seq, "err", err)
		}
		s.mu.Lock()
		delete(s.failed, d.Seq)
		s.lastAck = max(s.lastAck, d.Seq)
		s.mu.Unlock()
	case s.ctx.Err() != nil:
		m.Nak()
	default:
		delay := s.sub.Retry.Delay(d.Attempt)
		s.b.log.Debug("nats: handler failed; redelivering later",
			"topic", d.Topic, "seq", d.Seq, "attempt", d.Attempt, "delay", delay, "err", err)
		if err := m.NakWithDelay(delay); err != nil {
			s.b.log.Debug("nats: nak", "seq", d.Seq, "err", err)
		}
		s.mu.Lock()
		s.failed[d.Seq] = struct{}{}
		s.mu.Unlock()
	}
}

// call runs the handler, turning a panic into an error so that one bad
// message cannot stop the process.
func (s *subscriber) call(d broker.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.b.log.Error("nats: handler panic", "topic", d.Topic, "seq", d.Seq, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return s.handler(s.ctx, d)
}

func (s *subscriber) delivery(m jetstream.Msg) (broker.Delivery, error) {
	meta, err := m.Metadata()
	if err != nil {
		return broker.Delivery{}, err
	}
	topic, ok := strings.CutPrefix(m.Subject(), s.b.cfg.Prefix+".")
	if !ok {
		return broker.Delivery{}, fmt.Errorf("subject %q outside prefix %q", m.Subject(), s.b.cfg.Prefix)
	}
	d := broker.Delivery{
		Message: broker.Message{Topic: topic, Data: m.Data()},
		Seq:     meta.Sequence.Stream,
		Time:    meta.Timestamp,
		Attempt: int(meta.NumDelivered),
	}
	for k, v := range m.Headers() {
		if len(v) == 0 {
			continue
		}
		switch {
		case k == jetstream.MsgIDHeader:
			d.ID = v[0]
		case k == broker.KeyHeader:
			d.Key = v[0]
		case strings.HasPrefix(k, "Nats-"):
		default:
			if d.Header == nil {
				d.Header = make(map[string]string)
			}
			d.Header[k] = v[0]
		}
	}
	return d, nil
}

// deleteFanout removes a fan-out subscription's consumer from the server
// rather than leaving it to expire.
func (s *subscriber) deleteFanout() {
	name := s.consumerName()
	if s.sub.Group != "" || name == "" || !s.b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.b.js.DeleteConsumer(ctx, s.b.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.b.log.Debug("nats: delete fan-out consumer", "consumer", name, "err", err)
	}
}

func wrapUnavailable(err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
	}
	return err
}
