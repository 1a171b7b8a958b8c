package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the common
// name cn to certFile and keyFile, dated mod.
func writeCert(t *testing.T, certFile, keyFile, cn string, mod time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTLSReloadAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	t0 := time.Now().Add(-time.Minute)
	writeCert(t, certFile, keyFile, "first", t0)

	var sawProto atomic.Value
	api := newBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		sawProto.Store(r.Header.Get("X-Forwarded-Proto") + " " + r.Header.Get("Forwarded"))
		w.Write([]byte(`{"backend":"api"}`))
	})
	g, err := New(Config{
		Upstreams:          []string{api.url},
		HealthInterval:     -1,
		CertFile:           certFile,
		KeyFile:            keyFile,
		CertReloadInterval: 10 * time.Millisecond,
		Logger:             testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan struct{})
	go func() { served <- g.Serve(ctx, ln) }()
	go func() { g.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		<-ran
		g.Close()
	})
	url := "https://" + ln.Addr().String() + "/api/v1/health"

	// fetch makes a new connection each time, so that it sees the
	// certificate served now.
	fetch := func() (*http.Response, string) {
		t.Helper()
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
		}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res, res.TLS.PeerCertificates[0].Subject.CommonName
	}

	res, cn := fetch()
	if cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", res.Proto)
	}
	if hsts := res.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000; includeSubDomains" {
		t.Fatalf("Strict-Transport-Security %q", hsts)
	}
	if sawProto.Load() != "https for=127.0.0.1;host=\""+ln.Addr().String()+"\";proto=https" {
		t.Fatalf("upstream saw %q", sawProto.Load())
	}

	writeCert(t, certFile, keyFile, "second", t0.Add(time.Second))
	eventually(t, 2*time.Second, "the new certificate to be served", func() bool {
		_, cn := fetch()
		return cn == "second"
	})
	if got := g.Status().TLS.NotAfter; got.IsZero() {
		t.Fatal("status has no certificate expiry")
	}

	// A broken rotation keeps the last good certificate.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	os.Chtimes(keyFile, t0.Add(2*time.Second), t0.Add(2*time.Second))
	time.Sleep(50 * time.Millisecond)
	if _, cn := fetch(); cn != "second" {
		t.Fatalf("after a broken rotation served %q, want second", cn)
	}
}

func TestRedirectHandler(t *testing.T) {
	tests := []struct {
		port       int
		host, path string
		want       string
	}{
		{0, "example.com", "/api/v1/x?a=1&b=2", "https://example.com/api/v1/x?a=1&b=2"},
		{0, "example.com:80", "/", "https://example.com/"},
		{8443, "example.com:8080", "/p", "https://example.com:8443/p"},
		{0, "[::1]:80", "/p", "https://[::1]/p"},
		{8443, "[::1]:80", "/p", "https://[::1]:8443/p"},
	}
	for _, tt := range tests {
		g, err := New(Config{Upstreams: []string{"http://127.0.0.1:1"}, HTTPSPort: tt.port})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, tt.path, nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		g.RedirectHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tt.want {
			t.Errorf("%s%s: %d %q, want 308 %q", tt.host, tt.path, rec.Code, rec.Header().Get("Location"), tt.want)
		}
		g.Close()
	}
}
