package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Outgoing requests are guarded against server-side request forgery: a
// webhook URL is chosen by whoever registers it, and without a guard it
// could point Strata at its own admin ports, the cloud metadata service
// (169.254.169.254) or anything else on the private network.
//
// The guard works at two points:
//
//   - Registration (CheckURL) refuses URLs that are not http or https,
//     carry user information or a fragment, have a malformed host, or name
//     a disallowed IP literal. Host names are not resolved there: what a
//     name resolves to can change at any time.
//   - Dialing (DialContext) checks the IP address each connection is about
//     to be made to, after name resolution, in net.Dialer.Control. A name
//     that resolves to a public address when registered and to 127.0.0.1
//     when delivered (DNS rebinding) is refused at the connection itself.
//
// Redirects are never followed (see newClient), and the transport ignores
// proxy environment variables, so every request goes straight to the
// checked address.

// BlockedError is returned for a connection or URL to an address the
// guard refuses.
type BlockedError struct {
	Addr  netip.Addr
	Class string // what the address is: "loopback", "private", ...
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s is a %s address; webhooks may only reach public addresses unless the host is in the allowed hosts", e.Addr, e.Class)
}

// blocked lists the ranges webhooks may not reach, with what each is.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped and checked
// as IPv4 first; NAT64 and 6to4 addresses are checked by the IPv4 address
// they embed as well.
var blocked = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\")"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // with 255.255.255.255, broadcast

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// classify returns what a refused address is, or "" for a public one.
func classify(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return b.class
		}
	}
	if ip.Is6() {
		a := ip.As16()
		var embedded netip.Addr
		switch {
		case nat64.Contains(ip):
			embedded = netip.AddrFrom4([4]byte(a[12:16]))
		case sixTo4.Contains(ip):
			embedded = netip.AddrFrom4([4]byte(a[2:6]))
		}
		if embedded.IsValid() {
			if c := classify(embedded); c != "" {
				return c + " (embedded in " + ip.String() + ")"
			}
		}
	}
	return ""
}

// Guard decides which hosts webhooks may reach. The zero value allows
// public addresses only.
type Guard struct {
	hosts    map[string]bool // host names allowed whatever they resolve to
	prefixes []netip.Prefix  // addresses allowed even if private
}

// NewGuard returns a guard that also allows the hosts of allow: each entry
// is an IP address ("127.0.0.1", "::1"), a CIDR ("10.1.0.0/16") or a host
// name ("hooks.internal"). An allowed host name is trusted with whatever it
// resolves to.
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}}
	for _, h := range allow {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if p, err := netip.ParsePrefix(h); err == nil {
			g.prefixes = append(g.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			ip = ip.Unmap().WithZone("")
			g.prefixes = append(g.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		name := canonicalHost(h)
		if err := checkHostName(name); err != nil {
			return nil, fmt.Errorf("webhooks: allowed host %q: %w", h, err)
		}
		g.hosts[name] = true
	}
	return g, nil
}

// CheckAddr returns a *BlockedError when ip may not be reached.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return nil
		}
	}
	if c := classify(ip); c != "" {
		return &BlockedError{Addr: ip, Class: c}
	}
	return nil
}

func (g *Guard) hostAllowed(host string) bool {
	return g.hosts[canonicalHost(host)]
}

// maxURLLen bounds a webhook URL.
const maxURLLen = 2048

// CheckURL parses a webhook URL and checks what can be checked without
// resolving its host: the scheme is http or https, there is a host and no
// user information or fragment, the port is a number, the host is a
// well-formed name or an IP literal that may be reached. The error's text
// says precisely what is wrong.
func (g *Guard) CheckURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("the URL is empty")
	}
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("the URL is longer than %d bytes", maxURLLen)
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("the URL contains spaces or control characters")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the URL does not parse: %s", strings.TrimPrefix(err.Error(), "parse "+strconv.Quote(raw)+": "))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return nil, errors.New("the URL must be absolute, starting with https:// or http://")
	default:
		return nil, fmt.Errorf("the URL's scheme is %q; only http and https are allowed", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, errors.New("the URL must have the form http(s)://host/path")
	}
	if u.User != nil {
		return nil, errors.New("the URL must not contain user information (user:password@); authenticate with the signature instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("the URL must not contain a fragment (#...)")
	}
	if len(u.String()) > maxURLLen {
		return nil, fmt.Errorf("the URL is longer than %d bytes once escaped", maxURLLen)
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("the URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("the URL's port %q is not a number from 1 to 65535", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("the URL's port is empty")
	}
	if strings.HasPrefix(u.Host, "[") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return nil, fmt.Errorf("the URL's host %q is not an IPv6 address", host)
		}
		if ip.Zone() != "" {
			return nil, errors.New("the URL's IPv6 address must not have a zone")
		}
		if err := g.CheckAddr(ip); err != nil {
			return nil, err
		}
		return u, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Is4() {
			return nil, fmt.Errorf("the URL's host %q must be in brackets", host)
		}
		if err := g.CheckAddr(ip); err != nil {
			return nil, err
		}
		return u, nil
	}
	name := canonicalHost(host)
	if err := checkHostName(name); err != nil {
		return nil, fmt.Errorf("the URL's host %q: %w", host, err)
	}
	return u, nil
}

func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// checkHostName checks a lower-case host name without its trailing dot. A
// name whose last label is numeric is refused: it is no DNS name, and
// resolvers read such names ("2130706433", "0x7f.1", "127.1") as IPv4
// addresses.
func checkHostName(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if len(name) > 253 {
		return errors.New("the host name is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("the host name has an empty label or one longer than 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("a label of the host name starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				if c >= 0x80 {
					return errors.New("the host name is not ASCII; use its xn-- (punycode) form")
				}
				return fmt.Errorf("the host name contains %q", c)
			}
		}
	}
	last := labels[len(labels)-1]
	numeric := true
	for i := 0; i < len(last); i++ {
		if c := last[i]; !(c >= '0' && c <= '9' || c == 'x' || c >= 'a' && c <= 'f') {
			numeric = false
			break
		}
	}
	if numeric && (last[0] >= '0' && last[0] <= '9') {
		return errors.New("it is neither a host name nor an IPv4 address in dotted-decimal form")
	}
	return nil
}

// DialContext connects like net.Dialer.DialContext, refusing addresses
// the guard does not allow; the check runs on each resolved address just
// before its connection is made. Hosts allowed by name skip the check.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !g.hostAllowed(host) {
		d.Control = g.control
	}
	return d.DialContext(ctx, network, addr)
}

// control runs before each connection's connect(2), with the resolved
// address.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhooks: refusing to dial %q: unreadable address", address)
	}
	return g.CheckAddr(ap.Addr())
}
