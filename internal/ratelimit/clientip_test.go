package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		remote  string
		headers map[string][]string
		want    string
	}{
		{"no proxy", "203.0.113.7:51000", nil, "203.0.113.7"},
		{"IPv6 peer", "[2001:db8::7]:51000", nil, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:51000", nil, "203.0.113.7"},
		{"peer without port", "203.0.113.7", nil, "203.0.113.7"},
		{"unparsable peer", "@", nil, "invalid IP"},

		// Spoofing: an untrusted peer's headers are ignored.
		{"untrusted peer sends XFF", "203.0.113.7:1", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.7"},
		{"untrusted peer sends Forwarded", "203.0.113.7:1", map[string][]string{"Forwarded": {"for=198.51.100.1"}}, "203.0.113.7"},
		{"untrusted peer claims a trusted hop", "203.0.113.7:1", map[string][]string{"X-Forwarded-For": {"10.0.0.1"}}, "203.0.113.7"},

		{"trusted peer, XFF", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"trusted peer, no header", "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer, empty XFF", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"client prepends a fake hop", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1"}}, "198.51.100.1"},
		{"client prepends a trusted-looking hop", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"10.9.9.9, 198.51.100.1"}}, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.1, 10.0.0.3, 10.0.0.2"}}, "198.51.100.1"},
		{"every hop trusted", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, "10.0.0.3"},
		{"several XFF lines", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"1.1.1.1", "198.51.100.1, 10.0.0.2"}}, "198.51.100.1"},
		{"XFF with ports", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.1:4711"}}, "198.51.100.1"},
		{"XFF IPv6 with port", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"[2001:db8::1]:4711"}}, "2001:db8::1"},
		{"XFF garbage from the client", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"<script>, 198.51.100.1"}}, "198.51.100.1"},
		{"XFF garbage at the proxy's place", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"198.51.100.1, garbage"}}, "10.0.0.1"},
		{"XFF garbage behind a trusted hop", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"garbage, 10.0.0.2"}}, "10.0.0.2"},
		{"XFF zone", "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.0.0.1"},
		{"XFF IPv6 trusted", "[fd00::1]:1", map[string][]string{"X-Forwarded-For": {"2001:db8::9, fd00::2"}}, "2001:db8::9"},

		{"Forwarded", "10.0.0.1:1", map[string][]string{"Forwarded": {"for=198.51.100.1;proto=https;by=10.0.0.1"}}, "198.51.100.1"},
		{"Forwarded quoted IPv6 with port", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded list", "10.0.0.1:1", map[string][]string{"Forwarded": {"for=192.0.2.43, for=198.51.100.17"}}, "198.51.100.17"},
		{"Forwarded trusted chain", "10.0.0.1:1", map[string][]string{"Forwarded": {`for=192.0.2.43, for="10.0.0.5:80";by=10.0.0.1`}}, "192.0.2.43"},
		{"Forwarded unknown", "10.0.0.1:1", map[string][]string{"Forwarded": {"for=unknown"}}, "10.0.0.1"},
		{"Forwarded obfuscated", "10.0.0.1:1", map[string][]string{"Forwarded": {`for=192.0.2.43, for="_hidden", for=10.0.0.2`}}, "10.0.0.2"},
		{"Forwarded without for", "10.0.0.1:1", map[string][]string{"Forwarded": {"proto=https"}}, "10.0.0.1"},
		{"Forwarded prefers over XFF", "10.0.0.1:1", map[string][]string{
			"Forwarded": {"for=198.51.100.1"}, "X-Forwarded-For": {"192.0.2.1"},
		}, "198.51.100.1"},
		{"Forwarded client forges a quote", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="1.1.1.1, for=198.51.100.1`}}, "198.51.100.1"},
		{"Forwarded client forges an element", "10.0.0.1:1", map[string][]string{"Forwarded": {`for=1.1.1.1;for=2.2.2.2, for=198.51.100.1`}}, "198.51.100.1"},
		{"Forwarded duplicate for at the proxy's place", "10.0.0.1:1", map[string][]string{"Forwarded": {`for=198.51.100.1;for=1.1.1.1`}}, "10.0.0.1"},
		{"Forwarded quoted escapes", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="198.51.100.\1"`}}, "198.51.100.1"},
		{"Forwarded case-insensitive name", "10.0.0.1:1", map[string][]string{"Forwarded": {`For=198.51.100.1`}}, "198.51.100.1"},
		{"Forwarded unquoted IPv6", "10.0.0.1:1", map[string][]string{"Forwarded": {`for=[2001:db8::1]`}}, "2001:db8::1"},
		{"Forwarded bare IPv6 is malformed", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="2001:db8::1"`}}, "10.0.0.1"},
		{"Forwarded IPv4 in brackets is malformed", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="[198.51.100.1]"`}}, "10.0.0.1"},
		{"Forwarded obfuscated port", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="198.51.100.1:_abc"`}}, "198.51.100.1"},
		{"Forwarded bad port", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="198.51.100.1:123456"`}}, "10.0.0.1"},
		{"Forwarded several lines", "10.0.0.1:1", map[string][]string{"Forwarded": {`for="1.1.1.1`, "for=198.51.100.1"}}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := ClientIP(r, trusted); got.String() != tt.want {
				t.Errorf("ClientIP = %v, want %s", got, tt.want)
			}
		})
	}
}

// A proxy that writes X-Forwarded-For only: a client's own Forwarded must
// not choose its address.
func TestClientIPFromOneHeader(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("Forwarded", "for=1.1.1.1")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := ClientIPFrom(r, trusted, HeaderXForwardedFor); got.String() != "198.51.100.1" {
		t.Errorf("ClientIPFrom(X-Forwarded-For) = %v, want 198.51.100.1", got)
	}
	if got := ClientIPFrom(r, trusted, "x-forwarded-for"); got.String() != "198.51.100.1" {
		t.Errorf("ClientIPFrom(x-forwarded-for) = %v, want 198.51.100.1", got)
	}
	if got := ClientIPFrom(r, trusted, "X-Real-IP"); got.String() != "10.0.0.1" {
		t.Errorf("ClientIPFrom(unsupported header) = %v, want the peer", got)
	}
}

func TestParseForwarded(t *testing.T) {
	got := ParseForwarded([]string{`for=192.0.2.1, ;, for=unknown;proto=http, by=x, for="[::1]";host="a,b", for=bad value, for=198.51.100.2`})
	want := []string{"192.0.2.1", "invalid IP", "invalid IP", "::1", "invalid IP", "198.51.100.2"}
	if len(got) != len(want) {
		t.Fatalf("ParseForwarded = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("ParseForwarded = %v, want %v", got, want)
		}
	}
}

func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.60;proto=http;by=203.0.113.43`,
		`for="[2001:db8:cafe::17]:4711"`,
		`for=192.0.2.43, for=198.51.100.17`,
		`for=unknown, for="_gazonk"`,
		`for="\"quoted\\"`,
		`for="1.1.1.1, for=2.2.2.2`,
		`;;,,for=1.2.3.4;;`,
		`for=[::1]:80;for=x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hops := ParseForwarded([]string{s})
		if len(hops) > strings.Count(s, ",")+1 {
			t.Fatalf("%d hops from %d elements at most", len(hops), strings.Count(s, ",")+1)
		}
		for _, h := range hops {
			checkHop(t, h)
		}
		// An element a proxy appends is read whatever the client sent.
		hops = ParseForwarded([]string{s + ", for=198.51.100.99"})
		if len(hops) == 0 || hops[len(hops)-1] != netip.MustParseAddr("198.51.100.99") {
			t.Fatalf("ParseForwarded(%q + appended element) = %v, lost the appended element", s, hops)
		}
	})
}

func FuzzXForwardedFor(f *testing.F) {
	for _, s := range []string{
		"198.51.100.1", "1.1.1.1, 10.0.0.2", "[2001:db8::1]:80", "fe80::1%eth0", " , ,", "::ffff:1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hops := ParseXForwardedFor([]string{s})
		if len(hops) > strings.Count(s, ",")+1 {
			t.Fatalf("%d hops from %d elements at most", len(hops), strings.Count(s, ",")+1)
		}
		for _, h := range hops {
			checkHop(t, h)
		}
		hops = ParseXForwardedFor([]string{s + ", 198.51.100.99"})
		if len(hops) == 0 || hops[len(hops)-1] != netip.MustParseAddr("198.51.100.99") {
			t.Fatalf("ParseXForwardedFor(%q + appended element) = %v, lost the appended element", s, hops)
		}
	})
}

func checkHop(t *testing.T, h netip.Addr) {
	t.Helper()
	if !h.IsValid() {
		return
	}
	if h.Zone() != "" || h.Is4In6() {
		t.Fatalf("hop %v: zoned or IPv4-mapped", h)
	}
}
