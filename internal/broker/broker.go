// Package broker defines the message broker Strata's events travel through:
// the outbox relay publishes each record change, and consumers (realtime
// fan-out, cache invalidation, webhooks) subscribe to it. Adapters live in
// subpackages (broker/nats); brokertest holds the behavioural suite every
// adapter must pass.
//
// Delivery is at least once: a message may reach a handler more than once
// (after a handler error, a crash, an ack lost to a disconnect), so handlers
// must be idempotent. Message.ID lets the broker drop a message published
// twice within its de-duplication window, which covers a relay that retries
// a publish whose acknowledgement it did not see.
package broker

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Errors returned by brokers, matched with errors.Is.
var (
	// ErrClosed is returned by a broker or subscriber after Close.
	ErrClosed = errors.New("broker: closed")
	// ErrUnavailable is returned when the broker cannot be reached; the
	// caller may retry later.
	ErrUnavailable = errors.New("broker: unavailable")
	// ErrInvalid is returned for a message or subscription the broker
	// refuses: a malformed topic, group or header.
	ErrInvalid = errors.New("broker: invalid argument")
)

// Broker publishes messages to topics and delivers them to subscribers.
// Implementations are safe for concurrent use.
type Broker interface {
	// Publish stores msg and returns its position in the stream once the
	// broker has acknowledged it durably. A message whose ID was already
	// published within the de-duplication window is not stored again;
	// Publish then returns the position of the first copy and no error.
	// It returns ErrInvalid for a malformed message, ErrUnavailable (or
	// the context's error) when the broker cannot be reached in time, and
	// ErrClosed after Close.
	Publish(ctx context.Context, msg Message) (seq uint64, err error)

	// PublishAll publishes msgs as Publish does, but sends each without
	// waiting for the acknowledgement of the one before, and returns once
	// every one is acknowledged or has failed: results[i] is msgs[i]'s.
	// The broker stores the messages it accepts in the order given; when
	// one fails, later ones may still be stored, so a caller that needs a
	// key's messages in order sends a key's next message only after the
	// one before it succeeded.
	PublishAll(ctx context.Context, msgs []Message) (results []Result)

	// Subscribe starts delivering the messages of sub.Topics to handler
	// and returns once the subscription is in place: a message published
	// after Subscribe returns is delivered (with From at New).
	//
	// Handler calls for one subscriber are sequential, in stream order,
	// so messages with the same Key arrive in the order they were
	// published, except that a message whose handler failed is delivered
	// again later, after messages that followed it. A nil return
	// acknowledges the message; an error asks for a redelivery after the
	// backoff of sub.Retry. The handler's context is cancelled when the
	// subscription ends.
	//
	// ctx governs the subscription's life: cancelling it ends the
	// subscription as Close does. Subscribe returns ErrInvalid for a
	// malformed subscription and ErrClosed after Close.
	Subscribe(ctx context.Context, sub Subscription, handler Handler) (Subscriber, error)

	// Last returns the position of the newest message in the stream, 0
	// when it holds none: a subscription From AtSeq(Last+1) receives
	// every message published after Last returned, and no earlier one.
	Last(ctx context.Context) (uint64, error)

	// Ping reports whether the broker is reachable and ready to accept
	// messages; it is meant for readiness checks.
	Ping(ctx context.Context) error

	// Close ends every subscription, waits for running handlers to return
	// and releases the broker's resources. It is safe to call more than
	// once.
	Close() error
}

// Result is the outcome of one message of Broker.PublishAll: its position
// in the stream, or why it was not stored.
type Result struct {
	Seq uint64
	Err error
}

// Handler processes one delivery. See Broker.Subscribe.
type Handler func(ctx context.Context, d Delivery) error

// Subscriber is a running subscription.
type Subscriber interface {
	// Close ends the subscription and waits for a running handler call to
	// return. Messages received but not yet handled are released for
	// redelivery (to another member of the group, or when the group next
	// subscribes). It is safe to call more than once, but not from the
	// subscription's own handler, which it would wait for; a handler that
	// wants to stop the subscription cancels the context passed to
	// Subscribe.
	Close() error
}

// Message is one event published to a topic.
type Message struct {
	// ID identifies the event; the broker drops a second message with the
	// same ID published within its de-duplication window. Empty disables
	// de-duplication for this message.
	ID string
	// Topic is a dot-separated name such as "records.posts"; see
	// ValidateTopic.
	Topic string
	// Key orders messages: consumers see messages with the same key in
	// publish order. For record changes it is "<collection>/<record id>".
	Key string
	// Data is the payload.
	Data []byte
	// Header carries metadata such as a W3C traceparent. Names are
	// case-sensitive; see ValidateHeader for the names that are reserved.
	Header map[string]string
}

// Delivery is a message as a subscriber receives it.
type Delivery struct {
	Message
	// Seq is the message's position in the stream: the value Publish
	// returned, usable as a Position to replay from.
	Seq uint64
	// Time is when the broker stored the message.
	Time time.Time
	// Attempt counts the deliveries of this message to the subscription,
	// starting at 1.
	Attempt int
}

// Redelivered reports whether the message was delivered before.
func (d Delivery) Redelivered() bool { return d.Attempt > 1 }

// Subscription describes what a subscriber receives.
type Subscription struct {
	// Group names a durable consumer group: each message is delivered to
	// one member of the group, and the group's position survives its
	// members, so a member that subscribes later resumes where the group
	// left off. Empty means a fan-out subscription: the subscriber sees
	// every message, and its position ends with it. See ValidateGroup.
	Group string
	// Topics lists topics or patterns to receive; see ValidatePattern.
	Topics []string
	// From is where a new fan-out subscription or a new group starts. For
	// a group that already exists it is ignored.
	From Position
	// Retry is the redelivery backoff after a handler error.
	Retry Backoff
	// AckWait is how long a handler may hold a message before the broker
	// delivers it again; 0 means 30 seconds.
	AckWait time.Duration
}

// Backoff is an exponential backoff: the first redelivery waits Min, each
// further one twice as long as the one before, up to Max.
type Backoff struct {
	// Min is the first delay; 0 means one second.
	Min time.Duration
	// Max caps the delay; 0 means one minute.
	Max time.Duration
}

// Delay returns the wait before delivery number attempt+1 of a message
// whose handler has failed attempt times.
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = time.Minute
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// Position is where a subscription starts in the stream. The zero value
// starts with messages published after the subscription is made.
type Position struct {
	kind positionKind
	seq  uint64
	time time.Time
}

type positionKind uint8

const (
	positionNew positionKind = iota
	positionBeginning
	positionSeq
	positionTime
)

// New starts with messages published after the subscription is made; it
// is the zero Position.
func New() Position { return Position{} }

// Beginning starts with the oldest message the broker still holds.
func Beginning() Position { return Position{kind: positionBeginning} }

// AtSeq starts with the message at seq (a Delivery.Seq or a value Publish
// returned), or the first one after it that the broker still holds. To
// resume after a message already seen, use AtSeq(seen+1).
func AtSeq(seq uint64) Position {
	if seq == 0 {
		return Beginning()
	}
	return Position{kind: positionSeq, seq: seq}
}

// AtTime starts with the first message stored at or after t.
func AtTime(t time.Time) Position { return Position{kind: positionTime, time: t} }

// IsNew reports whether p starts with new messages only.
func (p Position) IsNew() bool { return p.kind == positionNew }

// IsBeginning reports whether p starts with the oldest message.
func (p Position) IsBeginning() bool { return p.kind == positionBeginning }

// Seq returns the sequence p starts at, and whether p is a sequence.
func (p Position) Seq() (uint64, bool) { return p.seq, p.kind == positionSeq }

// Time returns the time p starts at, and whether p is a time.
func (p Position) Time() (time.Time, bool) { return p.time, p.kind == positionTime }

// String describes p: "new", "beginning", "seq:N" or "time:RFC3339".
func (p Position) String() string {
	switch p.kind {
	case positionBeginning:
		return "beginning"
	case positionSeq:
		return "seq:" + strconv.FormatUint(p.seq, 10)
	case positionTime:
		return "time:" + p.time.UTC().Format(time.RFC3339Nano)
	}
	return "new"
}
