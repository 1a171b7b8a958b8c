package rest_test

import (
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP server on loopback that keeps what it receives.
type mailbox struct {
	addr string
	mu   sync.Mutex
	msgs []mail
	got  chan struct{}
}

type mail struct {
	from, to string
	data     string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{got: make(chan struct{}, 100)}
	s := smtp.NewServer(mb)
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return mb
}

func (mb *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }

type mailSession struct {
	mb       *mailbox
	from, to string
}

func (s *mailSession) Reset()                                      {}
func (s *mailSession) Logout() error                               { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, mail{from: s.from, to: s.to, data: string(b)})
	s.mb.mu.Unlock()
	s.mb.got <- struct{}{}
	return nil
}

// next waits for the next message.
func (mb *mailbox) next(t *testing.T) mail {
	t.Helper()
	select {
	case <-mb.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no email arrived")
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.msgs[len(mb.msgs)-1]
}

func (mb *mailbox) count() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return len(mb.msgs)
}

var codeRE = regexp.MustCompile(`(?m)^    (\S+)\r?$`)

func (m mail) code(t *testing.T) string {
	t.Helper()
	c := codeRE.FindStringSubmatch(m.data)
	if c == nil {
		t.Fatalf("no code in the email:\n%s", m.data)
	}
	return c[1]
}
