package natsbroker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/broker"
)

// Config configures a Broker. With URL empty the broker runs an embedded
// NATS server storing its data under Dir; with URL set it connects to
// those servers.
type Config struct {
	// URL lists the servers of an external NATS cluster, separated by
	// commas: "nats://host:4222,nats://user:pass@host2:4222". A bare
	// "host:port" means nats://host:port. Empty runs the embedded server.
	URL string
	// CredentialsFile is a NATS credentials (JWT and NKey seed) file for
	// an external server; optional.
	CredentialsFile string
	// TLS, when set, makes the connection to an external server use TLS.
	TLS *tls.Config

	// Dir is where the embedded server stores its streams (Strata passes
	// "<data dir>/nats"); required when URL is empty.
	Dir string
	// Listen, when set ("127.0.0.1:4222"), makes the embedded server also
	// accept clients on that address; otherwise it is reachable only from
	// this process.
	Listen string
	// SyncAlways makes the embedded server flush every message to disk
	// before acknowledging it, rather than every two minutes; it trades
	// publish latency for surviving a power loss.
	SyncAlways bool

	// Stream is the JetStream stream holding every topic; default "STRATA".
	Stream string
	// Prefix is the subject prefix of topics: topic "records.posts" is
	// subject "<Prefix>.records.posts"; default "strata".
	Prefix string
	// MaxAge drops messages older than this; default 24 hours, negative
	// keeps them until MaxBytes applies.
	MaxAge time.Duration
	// MaxBytes drops the oldest messages once the stream holds this many
	// bytes; 0 means no limit.
	MaxBytes int64
	// Duplicates is the window within which a message with an ID already
	// seen is dropped; default 2 minutes.
	Duplicates time.Duration
	// Replicas is the stream's replication factor on a NATS cluster;
	// default 1.
	Replicas int
	// MemoryStorage keeps the stream in memory instead of files.
	MemoryStorage bool

	// Name is the client connection name the server shows; default
	// "strata".
	Name string
	// PublishTimeout bounds a publish whose context has no deadline;
	// default 5 seconds.
	PublishTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts to an external
	// server; default 1 second. Reconnection never gives up.
	ReconnectWait time.Duration
	// Prefetch is how many messages a subscriber buffers ahead of its
	// handler; default 64.
	Prefetch int
	// FanoutIdle is how long the server keeps a fan-out subscription's
	// consumer after its subscriber went away without closing it (a
	// crash); default 5 minutes.
	FanoutIdle time.Duration

	// Logger receives connection and server events; default discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "STRATA"
	}
	if c.Prefix == "" {
		c.Prefix = "strata"
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	} else if c.MaxAge < 0 {
		c.MaxAge = 0
	}
	if c.Duplicates == 0 {
		c.Duplicates = 2 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Name == "" {
		c.Name = "strata"
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = time.Second
	}
	if c.Prefetch == 0 {
		c.Prefetch = 64
	}
	if c.FanoutIdle == 0 {
		c.FanoutIdle = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if c.URL == "" && c.Dir == "" {
		return fmt.Errorf("%w: nats: set URL for an external server or Dir for the embedded one", broker.ErrInvalid)
	}
	if c.URL != "" && (c.Dir != "" || c.Listen != "") {
		return fmt.Errorf("%w: nats: Dir and Listen apply only to the embedded server, not with URL", broker.ErrInvalid)
	}
	for i := 0; i < len(c.Stream); i++ {
		if b := c.Stream[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-') {
			return fmt.Errorf("%w: nats: stream name %q has a bad character %q", broker.ErrInvalid, c.Stream, b)
		}
	}
	if err := broker.ValidateTopic(c.Prefix); err != nil {
		return fmt.Errorf("nats: prefix: %w", err)
	}
	if c.MaxBytes < 0 || c.Duplicates < 0 || c.Replicas < 0 || c.PublishTimeout < 0 ||
		c.ReconnectWait < 0 || c.Prefetch < 0 || c.FanoutIdle < 0 {
		return fmt.Errorf("%w: nats: negative limit in config", broker.ErrInvalid)
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		return fmt.Errorf("%w: nats: duplicates window %s exceeds max age %s", broker.ErrInvalid, c.Duplicates, c.MaxAge)
	}
	return nil
}

// ParseServers splits a comma-separated list of NATS server URLs and
// checks each: scheme nats, tls, ws or wss (a bare "host:port" means
// nats), a host, an optional numeric port, optional user information, and
// no path, query or fragment. It returns the URLs in canonical form.
func ParseServers(list string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		s, err := parseServer(item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: nats: no server URL in %q", broker.ErrInvalid, list)
	}
	return out, nil
}

func parseServer(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: nats: server URL: %w", broker.ErrInvalid, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: nats: server URL %q: %s", broker.ErrInvalid, u.Redacted(), why)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "", bad("scheme must be nats, tls, ws or wss")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", bad("want scheme://host:port only")
	}
	host := u.Hostname()
	if host == "" || strings.ContainsAny(host, ",/ ") {
		return "", bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", bad("port must be 1 to 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", bad("empty port")
	}
	out := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}
	return out.String(), nil
}

// splitListen parses the embedded server's listen address "host:port".
func splitListen(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: nats: listen address: %w", broker.ErrInvalid, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%w: nats: listen address %q: bad port", broker.ErrInvalid, addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, n, nil
}
