package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-dev/strata/internal/httpx"
)

// errNoUpstream is returned by the round tripper when no upstream is
// available; the client gets a 503 problem.
var errNoUpstream = errors.New("no upstream available")

// request is what the gateway knows about one client request while it is
// proxied; it travels in the request context.
type request struct {
	id         string
	idempotent bool
	tls        bool
	body       *replayBody // nil when the request has no body
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// idempotent reports whether r may be sent again after it reached an
// upstream: its method is idempotent (RFC 9110, 9.2.2) or the client gave
// an Idempotency-Key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// streaming reports whether r opens a long-lived exchange (a WebSocket or an
// event stream) that the overall request timeout must not cut.
func streaming(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/event-stream") {
			return true
		}
	}
	return false
}

func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if !httpx.ValidRequestID(id) {
		var b [12]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	st := &request{id: id, idempotent: idempotent(r), tls: r.TLS != nil}
	ctx := r.Context()
	if g.cfg.RequestTimeout > 0 && !streaming(r) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.RequestTimeout)
		defer cancel()
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body, err := g.prepareBody(r, st.idempotent)
		if err != nil {
			g.writeProblem(w, st, http.StatusBadRequest, "bad-request", "the request body could not be read")
			return
		}
		st.body = body
	}
	ctx = context.WithValue(ctx, requestKey{}, st)
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// prepareBody makes the request body replayable where retries may need it:
// an idempotent request's body up to MaxRetryBody is read into memory;
// anything else is streamed, and can be sent again only while nothing of it
// was read.
func (g *Gateway) prepareBody(r *http.Request, idem bool) (*replayBody, error) {
	max := g.cfg.MaxRetryBody
	if !idem || g.cfg.Retries < 0 || r.ContentLength > max {
		return &replayBody{src: r.Body, length: r.ContentLength}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) > max {
		return &replayBody{src: io.MultiReader(bytes.NewReader(buf), r.Body), length: r.ContentLength}, nil
	}
	return &replayBody{buf: buf, buffered: true}, nil
}

// replayBody is a request body that retries can send again: a buffered copy,
// or a stream that can be handed out again only while unread.
type replayBody struct {
	buffered bool
	buf      []byte
	src      io.Reader
	length   int64
	read     atomic.Int64
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// Close does nothing: the server closes the client's body.
func (b *replayBody) Close() error { return nil }

// attach sets the body of one attempt.
func (b *replayBody) attach(out *http.Request) {
	if b.buffered {
		out.ContentLength = int64(len(b.buf))
		out.Body = io.NopCloser(bytes.NewReader(b.buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.buf)), nil }
		return
	}
	out.ContentLength = b.length
	out.Body = b
	out.GetBody = nil
}

// rewrite sets the headers of the outbound request; the upstream itself is
// set per attempt by the round tripper. ReverseProxy has already removed
// hop-by-hop headers and the inbound Forwarded and X-Forwarded-* headers.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	st := requestFrom(in.Context())
	trusted := g.trustedPeer(in.RemoteAddr)
	if trusted {
		if v := in.Header.Values("X-Forwarded-For"); len(v) > 0 {
			out.Header["X-Forwarded-For"] = v
		}
	}
	pr.SetXForwarded() // appends the peer to X-Forwarded-For; sets -Host and -Proto
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if trusted {
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			out.Header.Set("X-Forwarded-Proto", v)
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			out.Header.Set("X-Forwarded-Host", v)
		}
	}
	elem := forwardedElement(in.RemoteAddr, in.Host, proto)
	if prev := in.Header.Values("Forwarded"); trusted && len(prev) > 0 {
		elem = strings.Join(prev, ", ") + ", " + elem
	}
	out.Header.Set("Forwarded", elem)
	if st != nil {
		out.Header.Set("X-Request-Id", st.id)
	}
	// Out keeps the client's Host header; the upstream's address is set on
	// the URL per attempt.
}

// forwardedElement is this hop's element of an RFC 7239 Forwarded header.
func forwardedElement(remoteAddr, host, proto string) string {
	var b strings.Builder
	b.WriteString("for=")
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		a := ap.Addr().Unmap()
		if a.Is6() {
			b.WriteString(`"[` + a.String() + `]"`)
		} else {
			b.WriteString(a.String())
		}
	} else {
		b.WriteString("unknown")
	}
	if host != "" {
		b.WriteString(";host=")
		b.WriteString(strconv.Quote(host))
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

func (g *Gateway) trustedPeer(remoteAddr string) bool {
	if len(g.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// securityHeaders are set on responses that do not carry them already.
var securityHeaders = [...][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
}

func (g *Gateway) setResponseHeaders(h http.Header, st *request) {
	for _, kv := range securityHeaders {
		if h.Get(kv[0]) == "" {
			h.Set(kv[0], kv[1])
		}
	}
	if st != nil {
		h.Set("X-Request-Id", st.id)
		if st.tls && g.cfg.HSTSMaxAge > 0 && h.Get("Strict-Transport-Security") == "" {
			h.Set("Strict-Transport-Security", "max-age="+strconv.FormatInt(int64(g.cfg.HSTSMaxAge/time.Second), 10)+"; includeSubDomains")
		}
	}
}

func (g *Gateway) modifyResponse(res *http.Response) error {
	g.setResponseHeaders(res.Header, requestFrom(res.Request.Context()))
	return nil
}

// proxyError answers a request no upstream answered.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := requestFrom(r.Context())
	id := ""
	if st != nil {
		id = st.id
	}
	switch {
	case errors.Is(err, errNoUpstream):
		g.m.noUpstream.Inc()
		w.Header().Set("Retry-After", "1")
		g.writeProblem(w, st, http.StatusServiceUnavailable, "unavailable", "no upstream is available to serve the request")
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; there is nobody to answer.
		g.log.Debug("client gone", "request_id", id, "method", r.Method, "path", r.URL.Path)
		w.WriteHeader(http.StatusBadGateway)
	case isTimeout(err) || errors.Is(r.Context().Err(), context.DeadlineExceeded):
		g.log.Warn("upstream timed out", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		g.writeProblem(w, st, http.StatusGatewayTimeout, "gateway-timeout", "the upstream did not answer in time")
	default:
		g.log.Warn("upstream failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		g.writeProblem(w, st, http.StatusBadGateway, "bad-gateway", "the upstream could not be reached or broke the exchange")
	}
}

func (g *Gateway) writeProblem(w http.ResponseWriter, st *request, status int, slug, detail string) {
	g.setResponseHeaders(w.Header(), st)
	httpx.WriteProblem(w, httpx.Problem{
		Type:   httpx.ProblemType(slug),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// roundTripper sends one proxied request, choosing an upstream per attempt
// and retrying on another where that is safe.
type roundTripper struct{ g *Gateway }

// attemptTrace records how far an attempt got.
type attemptTrace struct {
	gotConn      atomic.Bool  // a connection to the upstream was made or reused
	connAt       atomic.Int64 // when, in Unix nanoseconds
	wroteHeaders atomic.Bool  // the request headers reached the connection
}

// serverTime is how long the upstream took from the moment the attempt had
// a connection: the latency the p2c policy compares, free of the one-off
// cost of dialing.
func (tr *attemptTrace) serverTime(now time.Time, total time.Duration) time.Duration {
	if at := tr.connAt.Load(); at != 0 {
		if d := now.Sub(time.Unix(0, at)); d >= 0 && d < total {
			return d
		}
	}
	return total
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	g := t.g
	st := requestFrom(req.Context())
	if st == nil {
		st = &request{idempotent: idempotent(req)}
	}
	var triedBuf [4]*upstream
	tried := triedBuf[:0]
	u := g.policy.pick(g.pool.list(), tried, time.Now())
	if u == nil {
		return nil, errNoUpstream
	}
	for attempt := 0; ; attempt++ {
		tried = append(tried, u)
		res, tr, err := g.attempt(req, st, u)
		var next *upstream
		if attempt < g.cfg.Retries && g.retryable(req, st, res, err, tr) {
			next = g.policy.pick(g.pool.list(), tried, time.Now())
		}
		if next == nil {
			return res, err
		}
		u.mRetries.Inc()
		g.log.Debug("retrying on another upstream", "request_id", st.id, "method", req.Method, "path", req.URL.Path,
			"failed", u.key, "next", next.key, "status", statusOf(res), "err", err)
		if res != nil {
			io.CopyN(io.Discard, res.Body, 64<<10) // let the connection be reused
			res.Body.Close()
		}
		u = next
	}
}

func statusOf(res *http.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// retryable reports whether the attempt that ended with res or err may be
// followed by another on a different upstream.
func (g *Gateway) retryable(req *http.Request, st *request, res *http.Response, err error, tr *attemptTrace) bool {
	if req.Context().Err() != nil {
		return false // the client left or the request ran out of time
	}
	if b := st.body; b != nil && !b.buffered && (tr.gotConn.Load() || b.read.Load() > 0) {
		return false // a streamed body cannot be sent twice
	}
	if err != nil {
		// An idempotent request may go again; any other only when its
		// headers never reached the upstream.
		return st.idempotent || !tr.wroteHeaders.Load()
	}
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return st.idempotent
	}
	return false
}

// failurePenalty is the latency sample a failed attempt counts as, so that
// a node failing fast does not look fast to the p2c policy.
const failurePenalty = time.Second

// attempt sends req to u once.
func (g *Gateway) attempt(req *http.Request, st *request, u *upstream) (*http.Response, *attemptTrace, error) {
	tr := &attemptTrace{}
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			tr.connAt.Store(time.Now().UnixNano())
			tr.gotConn.Store(true)
		},
		WroteHeaders: func() { tr.wroteHeaders.Store(true) },
	})
	out := req.WithContext(ctx)
	target := *req.URL
	target.Scheme, target.Host = u.url.Scheme, u.url.Host
	out.URL = &target
	if st.body != nil {
		st.body.attach(out)
	} else {
		out.Body, out.ContentLength, out.GetBody = nil, 0, nil
	}

	u.inFlight.Add(1)
	u.mInFlight.Inc()
	u.requests.Add(1)
	done := func() {
		u.inFlight.Add(-1)
		u.mInFlight.Dec()
	}
	start := time.Now()
	res, err := g.tr.RoundTrip(out)
	now := time.Now()
	elapsed := now.Sub(start)
	if err != nil {
		done()
		if req.Context().Err() != nil && !errors.Is(req.Context().Err(), context.DeadlineExceeded) {
			return nil, tr, err // the client left: not the upstream's fault
		}
		kind := "transport"
		switch {
		case isTimeout(err):
			kind = "timeout"
		case !tr.gotConn.Load():
			kind = "connect"
		}
		g.m.errors.WithLabelValues(u.key, kind).Inc()
		g.recordFailure(u, now, max(elapsed, failurePenalty), kind+": "+err.Error())
		return nil, tr, err
	}
	u.mDuration.Observe(elapsed.Seconds())
	g.m.requests.WithLabelValues(u.key, codeLabel(res.StatusCode)).Inc()
	// A node that cannot serve says so with 502, 503 or 504; a 500 is an
	// error of one request (a bug on one route), and must not take nodes
	// out of rotation, or one bad route would empty the pool.
	if res.StatusCode == http.StatusBadGateway || res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusGatewayTimeout {
		g.m.errors.WithLabelValues(u.key, "status").Inc()
		g.recordFailure(u, now, max(elapsed, failurePenalty), "status "+strconv.Itoa(res.StatusCode))
	} else {
		g.recordSuccess(u, now, tr.serverTime(now, elapsed))
	}
	res.Body = trackBody(res.Body, done)
	return res, tr, nil
}

// trackBody calls done once when body is closed. An upgraded connection's
// body is also written to, so the wrapper keeps its Write.
func trackBody(body io.ReadCloser, done func()) io.ReadCloser {
	tb := trackedBody{ReadCloser: body, once: new(sync.Once), done: done}
	if rw, ok := body.(io.ReadWriteCloser); ok {
		return trackedRWBody{trackedBody: tb, w: rw}
	}
	return tb
}

type trackedBody struct {
	io.ReadCloser
	once *sync.Once
	done func()
}

func (b trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

type trackedRWBody struct {
	trackedBody
	w io.Writer
}

func (b trackedRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }
