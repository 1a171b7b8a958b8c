package gateway

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in      string
		url     string
		weight  int
		wantErr string
	}{
		{in: "http://10.0.0.7:8090", url: "http://10.0.0.7:8090", weight: 1},
		{in: "  https://api.internal  ", url: "https://api.internal", weight: 1},
		{in: "http://a:8090/ weight=3", url: "http://a:8090", weight: 3},
		{in: "http://[::1]:8090\tweight=1000", url: "http://[::1]:8090", weight: 1000},
		{in: "", wantErr: "upstream is empty"},
		{in: "   ", wantErr: "upstream is empty"},
		{in: "a:8090", wantErr: `URL scheme "a" is not http or https`},
		{in: "10.0.0.7:8090", wantErr: "invalid URL: first path segment in URL cannot contain colon"},
		{in: "//a:8090", wantErr: "URL has no scheme"},
		{in: "ftp://a", wantErr: `URL scheme "ftp" is not http or https`},
		{in: "http://", wantErr: "URL has no host"},
		{in: "http:a", wantErr: "URL has no host"},
		{in: "http://a:", wantErr: "URL has an empty port"},
		{in: "http://a:0", wantErr: `port "0" is not from 1 to 65535`},
		{in: "http://a:70000", wantErr: `port "70000" is not from 1 to 65535`},
		{in: "http://a:x", wantErr: "invalid URL"},
		{in: "http://u:p@a", wantErr: "URL may not carry user information"},
		{in: "http://a/api", wantErr: `URL may not have a path (got "/api")`},
		{in: "http://a?x=1", wantErr: "URL may not have a query"},
		{in: "http://a#f", wantErr: "URL may not have a fragment"},
		{in: "http://a weight", wantErr: `option "weight" is not key=value`},
		{in: "http://a weight=0", wantErr: `weight "0" is not an integer from 1 to 1000`},
		{in: "http://a weight=-2", wantErr: `weight "-2" is not an integer from 1 to 1000`},
		{in: "http://a weight=1001", wantErr: `weight "1001" is not an integer from 1 to 1000`},
		{in: "http://a weight=2.5", wantErr: `weight "2.5" is not an integer from 1 to 1000`},
		{in: "http://a weight=", wantErr: `weight "" is not an integer from 1 to 1000`},
		{in: "http://a weight=2 weight=3", wantErr: `option "weight" given twice`},
		{in: "http://a zone=eu", wantErr: `unknown option "zone" (known: weight)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			spec, err := ParseUpstream(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseUpstream(%q) = %v, want error containing %q", tt.in, spec.URL, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if tt.in != "" && strings.TrimSpace(tt.in) != "" && !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
					t.Fatalf("error %q does not quote the entry", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseUpstream(%q): %v", tt.in, err)
			}
			if got := spec.URL.String(); got != tt.url || spec.Weight != tt.weight {
				t.Fatalf("ParseUpstream(%q) = %s weight %d, want %s weight %d", tt.in, got, spec.Weight, tt.url, tt.weight)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"nothing", Config{}, "no upstreams"},
		{"bad upstream", Config{Upstreams: []string{"http://a weight=x"}}, `weight "x"`},
		{"twice", Config{Upstreams: []string{"http://a:1", "http://a:1 weight=2"}}, "listed twice"},
		{"policy", Config{Upstreams: []string{"http://a"}, Policy: "random"}, `policy "random" is not one of`},
		{"discovery port", Config{DiscoverDNS: "api.svc"}, "discovery port 0"},
		{"half TLS", Config{Upstreams: []string{"http://a"}, CertFile: "c.pem"}, "both a certificate file and a key file"},
		{"missing cert", Config{Upstreams: []string{"http://a"}, CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "certificate file"},
		{"health path", Config{Upstreams: []string{"http://a"}, HealthPath: "readyz"}, `health path "readyz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{
		"http://10.0.0.7:8090", "https://a weight=3", "http://[::1]:1 weight=1000",
		"http://a weight=0", "http://a/x", "ftp://a", "http://a zone=b", "", "http://a:65535 weight=7 weight=8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseUpstream(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if spec.Weight < 1 || spec.Weight > MaxWeight {
			t.Fatalf("weight %d out of range", spec.Weight)
		}
		u := spec.URL
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			t.Fatalf("accepted %q as %#v", s, u)
		}
		// What was accepted prints in the same syntax and parses to the same.
		again, err := ParseUpstream(u.String() + " weight=" + strconv.Itoa(spec.Weight))
		if err != nil {
			t.Fatalf("%q parsed, but its canonical form %q does not: %v", s, u.String(), err)
		}
		if again.URL.String() != u.String() || again.Weight != spec.Weight {
			t.Fatalf("round trip of %q: %v weight %d, then %v weight %d", s, u, spec.Weight, again.URL, again.Weight)
		}
	})
}
