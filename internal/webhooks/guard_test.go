package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/apperr"
)

// TestCheckAddr covers the address classes the dial-time check refuses,
// in IPv4, IPv6 and IPv4-mapped IPv6.
func TestCheckAddr(t *testing.T) {
	var g Guard
	tests := []struct {
		ip    string
		class string // "" for allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8

		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fc00::1", "private (unique local)"},
		{"fd12:3456::1", "private (unique local)"},
		{"169.254.169.254", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified (\"this network\")"},
		{"::", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified (\"this network\")"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.100.100.200", "shared (carrier-grade NAT)"},
		{"198.18.0.1", "reserved (benchmarking)"},
		{"255.255.255.255", "reserved"},
		{"::127.0.0.1", "IPv4-compatible (deprecated)"},
		{"64:ff9b::7f00:1", "loopback (embedded in 64:ff9b::7f00:1)"},
		{"64:ff9b::a9fe:a9fe", "link-local (embedded in 64:ff9b::a9fe:a9fe)"},
		{"2002:7f00:1::", "loopback (embedded in 2002:7f00:1::)"},
		{"2002:c0a8:101::1", "private (embedded in 2002:c0a8:101::1)"},
		{"fec0::1", "site-local (deprecated)"},
		{"100::1", "discard-only"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			err := g.CheckAddr(netip.MustParseAddr(tt.ip))
			var be *BlockedError
			switch {
			case tt.class == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.class != "" && !errors.As(err, &be):
				t.Errorf("allowed, want refused as %s (err %v)", tt.class, err)
			case tt.class != "" && be.Class != tt.class:
				t.Errorf("class %q, want %q", be.Class, tt.class)
			}
		})
	}
}

func TestGuardAllow(t *testing.T) {
	g, err := NewGuard([]string{"127.0.0.1", "10.1.0.0/16", "::1", "Hooks.Internal."})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3", "::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(ip)); err != nil {
			t.Errorf("%s: %v", ip, err)
		}
	}
	for _, ip := range []string{"127.0.0.2", "10.2.0.1", "169.254.169.254"} {
		if err := g.CheckAddr(netip.MustParseAddr(ip)); err == nil {
			t.Errorf("%s allowed", ip)
		}
	}
	if !g.hostAllowed("hooks.internal") || !g.hostAllowed("HOOKS.internal.") || g.hostAllowed("other.internal") {
		t.Error("host names")
	}
	if _, err := NewGuard([]string{"bad host"}); err == nil {
		t.Error("a malformed allowed host was accepted")
	}
}

// TestCheckURL covers registration: the URLs refused, with their reasons,
// and those accepted.
func TestCheckURL(t *testing.T) {
	var g Guard
	refused := []struct{ url, msg string }{
		{"", "empty"},
		{"/relative/path", "absolute"},
		{"example.com/hook", "absolute"},
		{"ftp://example.com/", `scheme is "ftp"`},
		{"file:///etc/passwd", `scheme is "file"`},
		{"javascript:alert(1)", `scheme is "javascript"`},
		{"http:example.com", "form http(s)://host/path"},
		{"http://user:pass@example.com/", "user information"},
		{"https://user@example.com/", "user information"},
		{"https://example.com/#frag", "fragment"},
		{"http://", "no host"},
		{"http:///path", "no host"},
		{"http://example.com:99999/", "port"},
		{"http://example.com:0/", "port"},
		{"http://example.com:/", "port is empty"},
		{"http://exa mple.com/", "spaces"},
		{"http://127.0.0.1/", "loopback"},
		{"http://127.0.0.1:8080/hook", "loopback"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://10.0.0.1/", "private"},
		{"http://192.168.0.10:3000/", "private"},
		{"http://0.0.0.0/", "unspecified"},
		{"http://[::1]/", "loopback"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"http://[::ffff:169.254.169.254]/", "link-local"},
		{"http://[fe80::1%25eth0]/", "zone"},
		{"http://[fd00::1]/", "private"},
		{"http://[1.2.3.4]/", "does not parse"},
		{"http://2130706433/", "dotted-decimal"},
		{"http://0x7f.1/", "dotted-decimal"},
		{"http://127.1/", "dotted-decimal"},
		{"http://%31%32%37.0.0.1/", "does not parse"},
		{"http://ex_ample..com/", "empty label"},
		{"http://-bad.com/", "hyphen"},
		{"http://bücher.de/", "punycode"},
	}
	for _, tt := range refused {
		t.Run(tt.url, func(t *testing.T) {
			_, err := g.CheckURL(tt.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
	for _, u := range []string{
		"https://example.com/hook",
		"http://hooks.example.com:8080/a/b?c=d&e=f",
		"HTTPS://EXAMPLE.COM/",
		"https://8.8.8.8/",
		"https://[2606:4700:4700::1111]:443/x",
		"http://localhost:8080/", // a name: checked when dialing
		"https://xn--bcher-kva.de/",
	} {
		if _, err := g.CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	allowed, _ := NewGuard([]string{"127.0.0.1"})
	if _, err := allowed.CheckURL("http://127.0.0.1:8080/"); err != nil {
		t.Errorf("allowed loopback refused: %v", err)
	}
}

// TestDialRefused: a host name that resolves to loopback passes
// registration but is refused when dialing unless allowed; so is a
// redirect, which is never followed.
func TestDialRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "sqlite", envOptions{}) // nothing allowed
	r := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(r.Listener.Addr().String())

	if _, err := e.svc.Create(ctx, CreateParams{URL: r.URL, Events: []EventFilter{{Collection: "*", Ops: []string{"*"}}}}); apperr.KindOf(err) != apperr.Invalid ||
		!strings.Contains(err.Error(), "127.0.0.1 is a loopback address") {
		t.Errorf("registering %s: %v", r.URL, err)
	}
	ep := e.create("http://localhost:"+port+"/hook", EventFilter{Collection: "*", Ops: []string{"*"}})
	d, err := e.svc.Test(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Success || d.Status != 0 || !strings.Contains(d.Error, "refused: ") || !strings.Contains(d.Error, "loopback address") {
		t.Errorf("delivery to localhost: %+v", d)
	}
	if r.count() != 0 {
		t.Errorf("the receiver got %d requests", r.count())
	}

	// The same host, allowed by name.
	g, _ := NewGuard([]string{"localhost"})
	if conn, err := g.DialContext(ctx, "tcp", "localhost:"+port); err != nil {
		t.Errorf("allowed host: %v", err)
	} else {
		conn.Close()
	}
	// A mapped address in a dial, as a resolver might return it.
	var none Guard
	if _, err := none.DialContext(ctx, "tcp", "[::ffff:127.0.0.1]:"+port); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("dial to a mapped loopback address: %v", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "sqlite", envOptions{allow: loopback})
	target := newReceiver(t, nil)
	redirect := newReceiver(t, nil)
	redirect.Config.Handler = http.RedirectHandler(target.URL, http.StatusTemporaryRedirect)
	ep := e.create(redirect.URL, EventFilter{Collection: "*", Ops: []string{"*"}})
	d, err := e.svc.Test(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Success || d.Status != http.StatusTemporaryRedirect || !strings.Contains(d.Error, "redirects are not followed") {
		t.Errorf("delivery %+v", d)
	}
	if target.count() != 0 {
		t.Error("the redirect was followed")
	}
}

// FuzzValidateURL: CheckURL never panics, and what it accepts is an
// absolute http(s) URL without user information whose literal IP, if any,
// may be reached, and which it accepts again once formatted.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]:80/", "http://u:p@h/",
		"http://2130706433/", "ftp://x", "http://%31%32%37.0.0.1/", "http://[fe80::1%25en0]/", "http://a.b.c:65535/?q#f",
		"HTTP://Example.COM.", "//example.com", "http://[::]/", "http://0/",
	} {
		f.Add(s)
	}
	var g Guard
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckURL(raw)
		if err != nil {
			return
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.User != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q: user %v host %q", raw, u.User, u.Hostname())
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if err := g.CheckAddr(ip); err != nil {
				t.Fatalf("accepted %q with a refused address: %v", raw, err)
			}
		}
		if _, err := g.CheckURL(u.String()); err != nil {
			t.Fatalf("accepted %q but not its formatted form %q: %v", raw, u.String(), err)
		}
	})
}
