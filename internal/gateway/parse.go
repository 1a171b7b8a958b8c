package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxWeight is the largest weight an upstream may have.
const MaxWeight = 1000

// UpstreamSpec is one parsed entry of Config.Upstreams.
type UpstreamSpec struct {
	URL    *url.URL // scheme and host only: http://10.0.0.7:8090
	Weight int      // 1 to MaxWeight; 1 when not given
}

// ParseUpstream parses an upstream entry: a URL with scheme http or https, a
// host and, optionally, a port, followed by options separated by spaces.
// The one option is weight=N, an integer from 1 to MaxWeight (default 1),
// used by the weighted policy:
//
//	http://10.0.0.7:8090
//	http://10.0.0.8:8090 weight=3
//
// The URL may not carry a path, query, fragment or user information: the
// gateway forwards the client's path unchanged.
func ParseUpstream(s string) (UpstreamSpec, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return UpstreamSpec{}, errors.New("upstream is empty")
	}
	u, err := parseUpstreamURL(fields[0])
	if err != nil {
		return UpstreamSpec{}, fmt.Errorf("upstream %q: %w", s, err)
	}
	spec := UpstreamSpec{URL: u, Weight: 1}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return UpstreamSpec{}, fmt.Errorf("upstream %q: option %q is not key=value", s, f)
		}
		if seen[key] {
			return UpstreamSpec{}, fmt.Errorf("upstream %q: option %q given twice", s, key)
		}
		seen[key] = true
		switch key {
		case "weight":
			w, err := strconv.Atoi(val)
			if err != nil || w < 1 || w > MaxWeight {
				return UpstreamSpec{}, fmt.Errorf("upstream %q: weight %q is not an integer from 1 to %d", s, val, MaxWeight)
			}
			spec.Weight = w
		default:
			return UpstreamSpec{}, fmt.Errorf("upstream %q: unknown option %q (known: weight)", s, key)
		}
	}
	return spec, nil
}

func parseUpstreamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", errors.Unwrap(err))
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return nil, errors.New("URL has no scheme (want http:// or https://)")
	default:
		return nil, fmt.Errorf("URL scheme %q is not http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	if u.User != nil {
		return nil, errors.New("URL may not carry user information")
	}
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		return nil, fmt.Errorf("URL may not have a path (got %q)", u.Path)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("URL may not have a query")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("URL may not have a fragment")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, errors.New("URL has no host")
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("URL has an empty port")
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %q is not from 1 to 65535", port)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
