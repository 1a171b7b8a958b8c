package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The header fields follow draft-ietf-httpapi-ratelimit-headers-10
// (the RateLimit-Policy and RateLimit fields, Structured Field lists whose
// items are the policy name as a String, with Integer parameters):
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=57;t=12
//
// q is the quota (requests) per window w (seconds), r the quota remaining
// and t the seconds until the quota is back to full. Retry-After
// (RFC 9110) tells a denied client when to retry.

// FormatPolicy returns the RateLimit-Policy item for a policy named name
// that enforces l: q requests per w seconds, with w the period rounded up
// to whole seconds and q scaled to it (rounded down, at least 1).
func FormatPolicy(name string, l Limit) string {
	w := max(int64(math.Ceil(l.Period.Seconds())), 1)
	q := int64(1)
	if l.Period > 0 {
		q = max(int64(float64(l.Rate)*float64(time.Duration(w)*time.Second)/float64(l.Period)), 1)
	}
	return sfString(name) + ";q=" + strconv.FormatInt(q, 10) + ";w=" + strconv.FormatInt(w, 10)
}

// FormatRateLimit returns the RateLimit item for a decision r of the
// policy named name: r requests remaining now, t seconds (rounded up)
// until the key is back to its full burst.
func FormatRateLimit(name string, r Result) string {
	return sfString(name) + ";r=" + strconv.Itoa(max(r.Remaining, 0)) + ";t=" + strconv.FormatInt(ceilSeconds(r.ResetAfter), 10)
}

// SetHeaders sets the RateLimit-Policy and RateLimit fields of h for the
// decision r of the policy named name, and Retry-After when r denies the
// request. It replaces fields a previous call set; a handler that
// enforces several policies formats the items itself and joins them with
// ", ".
func SetHeaders(h http.Header, name string, r Result) {
	h.Set("RateLimit-Policy", FormatPolicy(name, r.Limit))
	h.Set("RateLimit", FormatRateLimit(name, r))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(r), 10))
	}
}

// RetryAfterSeconds returns r.RetryAfter in whole seconds, rounded up and
// at least 1, for Retry-After and problem documents.
func RetryAfterSeconds(r Result) int64 {
	return max(ceilSeconds(r.RetryAfter), 1)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// sfString formats s as a Structured Field String (RFC 9651): quoted, with
// '"' and '\' escaped; characters a String cannot hold become '?'.
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
