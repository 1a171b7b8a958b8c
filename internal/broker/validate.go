package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits on names, chosen to fit every engine Strata targets (NATS
// subjects and consumer names, Kafka topics and group ids, RabbitMQ
// routing keys and queue names).
const (
	maxTopicLen  = 200
	maxGroupLen  = 100
	maxHeaderLen = 4096
)

// KeyHeader is the header that carries Message.Key in engines without a
// key of their own; it is reserved.
const KeyHeader = "Strata-Key"

// ValidateTopic checks a topic name: one or more tokens separated by dots,
// each made of ASCII letters, digits, '_' and '-', at most 200 bytes in
// all. It returns an error wrapping ErrInvalid.
func ValidateTopic(topic string) error {
	return validateSubject(topic, false)
}

// ValidatePattern checks a subscription pattern: a topic in which a token
// may be '*' (any one token), and the last token may be '>' (one or more
// tokens). It returns an error wrapping ErrInvalid.
func ValidatePattern(pattern string) error {
	return validateSubject(pattern, true)
}

func validateSubject(s string, pattern bool) error {
	what := "topic"
	if pattern {
		what = "topic pattern"
	}
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(s) > maxTopicLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, maxTopicLen)
	}
	for rest := s; ; {
		tok, after, more := strings.Cut(rest, ".")
		switch {
		case tok == "":
			return fmt.Errorf("%w: %s %q has an empty token", ErrInvalid, what, s)
		case pattern && tok == "*":
		case pattern && tok == ">":
			if more {
				return fmt.Errorf("%w: %s %q has '>' before its last token", ErrInvalid, what, s)
			}
		default:
			for i := 0; i < len(tok); i++ {
				if !nameByte(tok[i]) {
					return fmt.Errorf("%w: %s %q has a bad character %q", ErrInvalid, what, s, tok[i])
				}
			}
		}
		if !more {
			return nil
		}
		rest = after
	}
}

// ValidateGroup checks a consumer group name: ASCII letters, digits, '_'
// and '-', at most 100 bytes. The empty name (fan-out) is valid. It
// returns an error wrapping ErrInvalid.
func ValidateGroup(group string) error {
	if len(group) > maxGroupLen {
		return fmt.Errorf("%w: group name longer than %d bytes", ErrInvalid, maxGroupLen)
	}
	for i := 0; i < len(group); i++ {
		if !nameByte(group[i]) {
			return fmt.Errorf("%w: group %q has a bad character %q", ErrInvalid, group, group[i])
		}
	}
	return nil
}

// ValidateHeader checks a message header: names are printable ASCII
// without ':' or spaces, values have no control characters, and names
// beginning with "Nats-" or equal to KeyHeader (in any case) are reserved
// for the broker. It returns an error wrapping ErrInvalid.
func ValidateHeader(h map[string]string) error {
	for name, value := range h {
		if name == "" {
			return fmt.Errorf("%w: empty header name", ErrInvalid)
		}
		if len(name)+len(value) > maxHeaderLen {
			return fmt.Errorf("%w: header %q longer than %d bytes", ErrInvalid, name, maxHeaderLen)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
				return fmt.Errorf("%w: header name %q has a bad character %q", ErrInvalid, name, c)
			}
		}
		if strings.EqualFold(name, KeyHeader) || len(name) >= 5 && strings.EqualFold(name[:5], "Nats-") {
			return fmt.Errorf("%w: header name %q is reserved", ErrInvalid, name)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				return fmt.Errorf("%w: header %q has a control character in its value", ErrInvalid, name)
			}
		}
	}
	return nil
}

// ValidateMessage checks a message's topic, header and key (printable, no
// line breaks, at most 4096 bytes). It returns an error wrapping
// ErrInvalid.
func ValidateMessage(m Message) error {
	if err := ValidateTopic(m.Topic); err != nil {
		return err
	}
	if len(m.Key) > maxHeaderLen || strings.ContainsAny(m.Key, "\r\n\x00") {
		return fmt.Errorf("%w: key %.40q is too long or has a line break", ErrInvalid, m.Key)
	}
	if len(m.ID) > maxHeaderLen || strings.ContainsAny(m.ID, "\r\n\x00") {
		return fmt.Errorf("%w: id %.40q is too long or has a line break", ErrInvalid, m.ID)
	}
	return ValidateHeader(m.Header)
}

// ValidateSubscription checks a subscription's group and topics. It
// returns an error wrapping ErrInvalid.
func ValidateSubscription(s Subscription) error {
	if err := ValidateGroup(s.Group); err != nil {
		return err
	}
	if len(s.Topics) == 0 {
		return fmt.Errorf("%w: subscription without topics", ErrInvalid)
	}
	for _, t := range s.Topics {
		if err := ValidatePattern(t); err != nil {
			return err
		}
	}
	if s.AckWait < 0 || s.Retry.Min < 0 || s.Retry.Max < 0 {
		return fmt.Errorf("%w: negative duration in subscription", ErrInvalid)
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// ParsePosition parses the text Position.String writes: "new",
// "beginning", "seq:N" with N > 0, or "time:" and an RFC 3339 time. It
// returns an error wrapping ErrInvalid.
func ParsePosition(s string) (Position, error) {
	switch s {
	case "new":
		return New(), nil
	case "beginning":
		return Beginning(), nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if ok {
		switch kind {
		case "seq":
			n, err := strconv.ParseUint(arg, 10, 64)
			if err == nil && n > 0 {
				return AtSeq(n), nil
			}
		case "time":
			t, err := time.Parse(time.RFC3339Nano, arg)
			if err == nil {
				return AtTime(t), nil
			}
		}
	}
	return Position{}, fmt.Errorf("%w: position %.60q: want new, beginning, seq:N or time:RFC3339", ErrInvalid, s)
}
