package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// Header names ClientIPFrom accepts.
const (
	HeaderForwarded     = "Forwarded"
	HeaderXForwardedFor = "X-Forwarded-For"
)

// ClientIP returns the address of the client that sent r: the socket peer,
// unless the peer is in trusted. Then the forwarding headers name the
// client: Forwarded (RFC 7239) when the request has one, else
// X-Forwarded-For. See ClientIPFrom for how they are read.
//
// A client can send either header itself. If the trusted proxies write
// only one of them and pass the other through, use ClientIPFrom with the
// one they write: otherwise a client that sends the other chooses its
// address.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	header := HeaderXForwardedFor
	if len(r.Header.Values(HeaderForwarded)) > 0 {
		header = HeaderForwarded
	}
	return ClientIPFrom(r, trusted, header)
}

// ClientIPFrom is ClientIP reading only header (HeaderForwarded or
// HeaderXForwardedFor).
//
// When the socket peer is trusted, the hops the header lists are walked
// from the right, the one nearest to this server, skipping trusted hops:
// the first untrusted hop is the client. Hops to its left were written by
// the client and are never used. When every hop is trusted, the leftmost
// is the client. When the walk meets a hop that names no address ("for=unknown",
// an obfuscated identifier, a malformed element) the client cannot be
// known, and the nearest trusted hop, which reported it, is returned.
//
// IPv4-mapped IPv6 addresses are returned as IPv4. The result is invalid
// only when the socket address itself does not parse.
func ClientIPFrom(r *http.Request, trusted []netip.Prefix, header string) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	var hops []netip.Addr
	switch http.CanonicalHeaderKey(header) {
	case HeaderForwarded:
		hops = ParseForwarded(r.Header.Values(HeaderForwarded))
	case HeaderXForwardedFor:
		hops = ParseXForwardedFor(r.Header.Values(HeaderXForwardedFor))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		if !hops[i].IsValid() {
			return client
		}
		client = hops[i]
		if !isTrusted(client, trusted) {
			return client
		}
	}
	return client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost parses a socket address, "host:port" or a bare host.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}

// ParseXForwardedFor returns the hops of X-Forwarded-For field values, in
// order, left to right. Each element is an IP address, optionally with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"); an element that is not is
// returned as the invalid Addr. Empty elements are skipped.
func ParseXForwardedFor(values []string) []netip.Addr {
	var hops []netip.Addr
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			hops = append(hops, parseXFFElement(elem))
		}
	}
	return hops
}

func parseXFFElement(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ParseForwarded returns the "for" node of each element of Forwarded
// field values (RFC 7239), in order, left to right. An element whose node
// is not an IP address ("unknown", an obfuscated "_name"), that has no
// "for", or that is malformed, is returned as the invalid Addr; parsing
// resumes at the next element. Each field line is parsed on its own, and
// empty elements are skipped.
func ParseForwarded(values []string) []netip.Addr {
	var hops []netip.Addr
	for _, v := range values {
		p := forwardedParser{s: v}
		for {
			node, ok, more := p.element()
			if ok {
				hops = append(hops, node)
			}
			if !more {
				break
			}
		}
	}
	return hops
}

// forwardedParser reads the elements of one Forwarded field line:
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
type forwardedParser struct {
	s string
	i int
}

// element parses the element at p.i and moves past the comma after it.
// ok is false for an empty element; more is false at the end of the line.
func (p *forwardedParser) element() (node netip.Addr, ok, more bool) {
	var forValue string
	hasFor, valid, empty := false, true, true
	for {
		p.skipOWS()
		if p.i >= len(p.s) {
			return p.result(forValue, hasFor, valid, empty), !empty, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			return p.result(forValue, hasFor, valid, empty), !empty, true
		case ';':
			p.i++
			continue
		}
		empty = false
		name, value, pairOK := p.pair()
		if !pairOK {
			p.skipElement()
			valid = false
			continue
		}
		if strings.EqualFold(name, "for") {
			if hasFor {
				valid = false // "for" given twice (RFC 7239, section 4)
			}
			hasFor, forValue = true, value
		}
		p.skipOWS()
		if p.i < len(p.s) && p.s[p.i] != ';' && p.s[p.i] != ',' {
			p.skipElement()
			valid = false
		}
	}
}

func (p *forwardedParser) result(forValue string, hasFor, valid, empty bool) netip.Addr {
	if empty || !valid || !hasFor {
		return netip.Addr{}
	}
	return parseNode(forValue)
}

// pair parses token "=" value at p.i.
func (p *forwardedParser) pair() (name, value string, ok bool) {
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	name = p.s[start:p.i]
	if name == "" || p.i >= len(p.s) || p.s[p.i] != '=' {
		return "", "", false
	}
	p.i++
	if p.i < len(p.s) && p.s[p.i] == '"' {
		value, end, ok := unquote(p.s, p.i)
		if !ok {
			return "", "", false
		}
		p.i = end
		return name, value, true
	}
	start = p.i
	// Tokens cannot hold "[", "]" or ":", but proxies that forget to quote
	// an IPv6 node or a port are common enough to accept.
	for p.i < len(p.s) && (isTchar(p.s[p.i]) || p.s[p.i] == '[' || p.s[p.i] == ']' || p.s[p.i] == ':') {
		p.i++
	}
	if p.i == start {
		return "", "", false
	}
	return name, p.s[start:p.i], true
}

// skipElement moves p.i to the next comma that is not inside a
// well-formed quoted string, or to the end. A quote that is never closed
// is taken as an ordinary character, so that elements after a malformed
// one (for example those a proxy appended) are still read.
func (p *forwardedParser) skipElement() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ',':
			return
		case '"':
			if _, end, ok := unquote(p.s, p.i); ok {
				p.i = end
				continue
			}
		}
		p.i++
	}
}

func (p *forwardedParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// unquote reads the quoted-string starting at s[i] == '"' and returns its
// content and the index after its closing quote.
func unquote(s string, i int) (value string, end int, ok bool) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return b.String(), j + 1, true
		case c == '\\':
			if j+1 == len(s) {
				return "", 0, false
			}
			j++
			b.WriteByte(s[j])
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		default:
			return "", 0, false
		}
	}
	return "", 0, false
}

// isTchar reports whether c may appear in a token (RFC 9110, 5.6.2).
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode parses a node of RFC 7239, section 6, returning an address
// only for an IPv4 address or a bracketed IPv6 address, with or without a
// port; "unknown" and obfuscated identifiers give the invalid Addr.
func parseNode(v string) netip.Addr {
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}
		}
		host, port = v[1:end], v[end+1:]
		if port != "" && (port[0] != ':' || !validPort(port[1:])) {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	if h, p, ok := strings.Cut(v, ":"); ok {
		if !validPort(p) {
			return netip.Addr{}
		}
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// validPort reports whether p is a node-port: 1 to 5 digits, or an
// obfuscated port ("_" followed by letters, digits, ".", "_" or "-").
func validPort(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
