package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// certReloader serves a certificate from a pair of PEM files and loads it
// again when either file's modification time or size changes. A pair that
// fails to load (a half-written rotation) keeps the previous certificate
// and is tried again at the next poll.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	stamp   [2]fileStamp // of the pair last loaded
	lastErr string
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// reload loads the pair if it changed since the last load. It reports
// whether a new certificate is served.
func (c *certReloader) reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err := stampOf(c.certFile)
	if err != nil {
		return false, fmt.Errorf("certificate file: %w", err)
	}
	ks, err := stampOf(c.keyFile)
	if err != nil {
		return false, fmt.Errorf("key file: %w", err)
	}
	now := [2]fileStamp{cs, ks}
	if c.cert.Load() != nil && now == c.stamp {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("load certificate: %w", err)
	}
	c.cert.Store(&cert)
	c.stamp = now
	return true, nil
}

// notAfter is the expiry of the certificate served.
func (c *certReloader) notAfter() time.Time {
	if cert := c.cert.Load(); cert != nil && cert.Leaf != nil {
		return cert.Leaf.NotAfter
	}
	return time.Time{}
}

func (g *Gateway) certLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.CertReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := g.certs.reload()
		c := g.certs
		c.mu.Lock()
		switch {
		case err != nil && err.Error() != c.lastErr:
			c.lastErr = err.Error()
			g.log.Error("certificate reload failed; serving the previous one", "cert_file", c.certFile, "err", err)
		case err == nil:
			c.lastErr = ""
		}
		c.mu.Unlock()
		if changed {
			g.log.Info("certificate reloaded", "cert_file", c.certFile, "not_after", c.notAfter())
		}
	}
}

// RedirectHandler answers every request with a permanent redirect (308,
// which keeps the method and body) to the same host and URL over HTTPS on
// Config.HTTPSPort. It is for a plain HTTP listener beside the TLS one.
func (g *Gateway) RedirectHandler() http.Handler {
	port := g.cfg.HTTPSPort
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, err := redirectHost(r.Host, port)
		if err != nil {
			g.writeProblem(w, nil, http.StatusBadRequest, "invalid", "the request has no usable Host header")
			return
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

func redirectHost(hostHeader string, port int) (string, error) {
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if port != 443 {
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]", nil
	}
	return host, nil
}
