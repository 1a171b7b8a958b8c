// Package natsbroker implements broker.Broker on NATS JetStream, either
// over an embedded nats-server that stores its data in a local directory
// (the single-binary default) or over an external NATS server or cluster.
//
// Every topic lives in one stream (Config.Stream) under the subjects
// "<Config.Prefix>.>". A consumer group is a durable pull consumer named
// after the group; a fan-out subscription is an ephemeral pull consumer
// of its own. Message.ID travels as the Nats-Msg-Id header, so the
// stream's duplicate window drops a message published twice, and
// Message.Key as the Strata-Key header.
package natsbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-dev/strata/internal/broker"
)

// Broker is a broker.Broker over NATS JetStream.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server // the embedded server; nil when external
	nc     *nats.Conn
	js     jetstream.JetStream
	closed atomic.Bool

	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

var _ broker.Broker = (*Broker)(nil)

// New starts the embedded server or connects to the external one, then
// creates the stream or updates its configuration. ctx bounds the start.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, subs: make(map[*subscriber]struct{})}
	var err error
	if cfg.URL == "" {
		err = b.startEmbedded(ctx)
	} else {
		err = b.connect(ctx)
	}
	if err != nil {
		b.shutdown()
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc, jetstream.WithDefaultTimeout(cfg.PublishTimeout),
		// An acknowledgement that never comes is forgotten after as long.
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout)); err != nil {
		b.shutdown()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	if err := b.ensureStream(ctx); err != nil {
		b.shutdown()
		return nil, err
	}
	return b, nil
}

// startEmbedded runs nats-server in this process and connects to it.
func (b *Broker) startEmbedded(ctx context.Context) error {
	opts := &server.Options{
		ServerName: "strata",
		JetStream:  true,
		StoreDir:   b.cfg.Dir,
		SyncAlways: b.cfg.SyncAlways,
		DontListen: b.cfg.Listen == "",
		NoSigs:     true,
	}
	if b.cfg.Listen != "" {
		host, port, err := splitListen(b.cfg.Listen)
		if err != nil {
			return err
		}
		opts.Host, opts.Port = host, port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{b.log}, b.log.Enabled(ctx, slog.LevelDebug), false, false)
	b.srv = srv
	srv.Start()
	wait := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		return fmt.Errorf("nats: embedded server not ready after %s: %w", wait.Round(time.Millisecond), broker.ErrUnavailable)
	}
	nc, err := nats.Connect("", append(b.connOptions(), nats.InProcessServer(srv))...)
	if err != nil {
		return fmt.Errorf("nats: connect to embedded server: %w", err)
	}
	b.nc = nc
	b.log.Info("nats: embedded server started", "dir", b.cfg.Dir, "listen", b.cfg.Listen)
	return nil
}

// connect dials the external servers.
func (b *Broker) connect(ctx context.Context) error {
	urls, err := ParseServers(b.cfg.URL)
	if err != nil {
		return err
	}
	opts := append(b.connOptions(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(b.cfg.ReconnectWait),
		nats.ReconnectJitter(b.cfg.ReconnectWait/5, b.cfg.ReconnectWait/5),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
	)
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(dl), time.Millisecond)))
	}
	if b.cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(b.cfg.CredentialsFile))
	}
	if b.cfg.TLS != nil {
		opts = append(opts, nats.Secure(b.cfg.TLS))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return fmt.Errorf("nats: connect: %w: %w", broker.ErrUnavailable, err)
	}
	b.nc = nc
	b.log.Info("nats: connected", "server", nc.ConnectedUrlRedacted())
	return nil
}

func (b *Broker) connOptions() []nats.Option {
	return []nats.Option{
		nats.Name(b.cfg.Name),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.closed.Load() {
				return
			}
			b.log.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			b.log.Warn("nats: async error", attrs...)
		}),
		nats.LameDuckModeHandler(func(*nats.Conn) {
			b.log.Info("nats: server entering lame duck mode")
		}),
	}
}

// ensureStream creates the stream, or updates it to the configuration.
func (b *Broker) ensureStream(ctx context.Context) error {
	storage := jetstream.FileStorage
	if b.cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	maxBytes := b.cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1 // unlimited
	}
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "Strata events",
		Subjects:    []string{b.cfg.Prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgs:     -1,
		Duplicates:  b.cfg.Duplicates,
		Replicas:    b.cfg.Replicas,
		Storage:     storage,
	})
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", b.cfg.Stream, err)
	}
	return nil
}

// Publish implements broker.Broker. It fails at once with
// broker.ErrUnavailable while the connection is down, rather than
// buffering the message until the server returns.
func (b *Broker) Publish(ctx context.Context, msg broker.Message) (uint64, error) {
	if b.closed.Load() {
		return 0, broker.ErrClosed
	}
	if err := broker.ValidateMessage(msg); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	if !b.nc.IsConnected() {
		return 0, fmt.Errorf("publish: %w: %s", broker.ErrUnavailable, b.nc.Status())
	}
	m, opts := b.natsMsg(msg)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.PublishTimeout)
		defer cancel()
	}
	ack, err := b.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return 0, publishError(err)
	}
	return ack.Sequence, nil
}

// PublishAll implements broker.Broker with JetStream's asynchronous
// publishes: the messages go out on the connection one after another and
// their acknowledgements are collected after. Each waits for its
// acknowledgement until ctx ends, or at most Config.PublishTimeout.
func (b *Broker) PublishAll(ctx context.Context, msgs []broker.Message) []broker.Result {
	res := make([]broker.Result, len(msgs))
	fail := func(err error) []broker.Result {
		for i := range res {
			res[i].Err = fmt.Errorf("publish: %w", err)
		}
		return res
	}
	switch {
	case b.closed.Load():
		return fail(broker.ErrClosed)
	case ctx.Err() != nil:
		return fail(ctx.Err())
	case !b.nc.IsConnected():
		return fail(fmt.Errorf("%w: %s", broker.ErrUnavailable, b.nc.Status()))
	}
	acks := make([]jetstream.PubAckFuture, len(msgs))
	for i, msg := range msgs {
		if err := broker.ValidateMessage(msg); err != nil {
			res[i].Err = fmt.Errorf("publish: %w", err)
			continue
		}
		m, opts := b.natsMsg(msg)
		f, err := b.js.PublishMsgAsync(m, opts...)
		if err != nil {
			res[i].Err = publishError(err)
			continue
		}
		acks[i] = f
	}
	timeout := time.NewTimer(b.cfg.PublishTimeout)
	defer timeout.Stop()
	expired := false
	for i, f := range acks {
		if f == nil {
			continue
		}
		if !expired {
			select {
			case ack := <-f.Ok():
				res[i].Seq = ack.Sequence
				continue
			case err := <-f.Err():
				res[i].Err = publishError(err)
				continue
			case <-ctx.Done():
			case <-timeout.C:
			}
			expired = true
		}
		// The wait is over: take the acknowledgements that came in time.
		select {
		case ack := <-f.Ok():
			res[i].Seq = ack.Sequence
		case err := <-f.Err():
			res[i].Err = publishError(err)
		default:
			res[i].Err = publishError(cmp.Or(ctx.Err(), context.DeadlineExceeded))
		}
	}
	return res
}

// natsMsg is msg as JetStream publishes it.
func (b *Broker) natsMsg(msg broker.Message) (*nats.Msg, []jetstream.PublishOpt) {
	m := &nats.Msg{Subject: b.subject(msg.Topic), Data: msg.Data, Header: make(nats.Header, len(msg.Header)+2)}
	for k, v := range msg.Header {
		m.Header[k] = []string{v}
	}
	if msg.Key != "" {
		m.Header[broker.KeyHeader] = []string{msg.Key}
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(b.cfg.Stream)}
	if msg.ID != "" {
		opts = append(opts, jetstream.WithMsgID(msg.ID))
	}
	return m, opts
}

// publishError wraps the error of a publish, marking those that mean the
// server did not answer.
func publishError(err error) error {
	if unavailable(err) {
		return fmt.Errorf("publish: %w: %w", broker.ErrUnavailable, err)
	}
	return fmt.Errorf("publish: %w", err)
}

// unavailable reports whether err means the server did not answer, as
// opposed to refusing the request.
func unavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs)
}

// Last implements broker.Broker.
func (b *Broker) Last(ctx context.Context) (uint64, error) {
	if b.closed.Load() {
		return 0, broker.ErrClosed
	}
	if !b.nc.IsConnected() {
		return 0, fmt.Errorf("last: %w: %s", broker.ErrUnavailable, b.nc.Status())
	}
	st, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		if unavailable(err) {
			return 0, fmt.Errorf("last: %w: %w", broker.ErrUnavailable, err)
		}
		return 0, fmt.Errorf("last: stream %s: %w", b.cfg.Stream, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// Ping implements broker.Broker: the connection is up and the stream
// answers.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("ping: %w: %s", broker.ErrUnavailable, b.nc.Status())
	}
	if _, err := b.js.Stream(ctx, b.cfg.Stream); err != nil {
		if unavailable(err) {
			return fmt.Errorf("ping: %w: %w", broker.ErrUnavailable, err)
		}
		return fmt.Errorf("ping: stream %s: %w", b.cfg.Stream, err)
	}
	return nil
}

// Close implements broker.Broker. It ends the subscriptions, flushes
// pending acknowledgements, closes the connection and, for the embedded
// server, shuts it down and waits until its files are closed, so that a
// new Broker can open the same directory.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.mu.Lock()
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	b.shutdown()
	return nil
}

// shutdown closes the connection and stops the embedded server.
func (b *Broker) shutdown() {
	if b.nc != nil {
		if b.nc.IsConnected() {
			b.nc.FlushTimeout(time.Second)
		}
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.log.Info("nats: embedded server stopped")
	}
}

func (b *Broker) subject(topic string) string { return b.cfg.Prefix + "." + topic }

func (b *Broker) track(s *subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return false
	}
	b.subs[s] = struct{}{}
	return true
}

func (b *Broker) untrack(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// serverLogger sends the embedded server's log lines to slog.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, "nats-server: "+fmt.Sprintf(format, v...))
	}
}

// Notices are the embedded server's start-up banner and routine news,
// which Strata reports in its own words: they go to debug.
func (l serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
