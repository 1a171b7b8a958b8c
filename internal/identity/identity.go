// Package identity signs in the records of auth collections: registration,
// password login, sessions with rotating refresh tokens, and logout.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// AccessTTL is how long a user's access token lives unless configured.
const AccessTTL = 15 * time.Minute

// Options configures a Service.
type Options struct {
	DB      *store.DB
	Records *records.Service
	Signer  *auth.Signer
	Logger  *slog.Logger
	// AccessTTL is how long an access token lives; RefreshTTL how long a
	// session lives without being refreshed.
	AccessTTL, RefreshTTL time.Duration
	// MinPassword is the shortest password accepted at registration.
	MinPassword int
	// Blocklist holds passwords users may not choose (lower case).
	Blocklist map[string]bool
	// Mailer sends password reset and verification emails; nil turns
	// those flows off.
	Mailer Mailer
	Now    func() time.Time
}

// Service runs sign-in flows.
type Service struct {
	o        Options
	decoy    func() string
	throttle *Throttle
	mail     sync.WaitGroup // emails being sent
}

// Close waits for the emails being sent.
func (s *Service) Close() { s.mail.Wait() }

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = AccessTTL
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.MinPassword <= 0 {
		o.MinPassword = 10
	}
	return &Service{o: o, throttle: NewThrottle(o.DB), decoy: sync.OnceValue(func() string {
		h, _ := auth.HashPassword("strata-decoy-password")
		return h
	})}
}

// Tokens answer a login or refresh.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int
	Record       *schema.Record
	// MFAToken, instead of the tokens above, answers a password login of
	// an account with a second factor: it is traded at mfa/verify.
	MFAToken string
}

func (s *Service) authCollection(ctx context.Context, name string) (*schema.Collection, error) {
	c, err := s.o.Records.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c.Type != schema.Auth {
		return nil, apperr.New(apperr.NotFound, "%s is not an auth collection", name)
	}
	return c, nil
}

// Register creates a record in an auth collection from body, which holds
// email, password and the collection's other fields. Registration is open
// when the collection has a create rule.
func (s *Service) Register(ctx context.Context, collection string, body map[string]json.RawMessage) (*schema.Record, error) {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	if c.Rules.Create == nil {
		return nil, apperr.New(apperr.Forbidden, "registration in %s is closed", collection)
	}
	var password string
	raw, ok := body["password"]
	if !ok || json.Unmarshal(raw, &password) != nil {
		return nil, fieldErr("password", "required", "password is required and must be a string")
	}
	if err := s.checkPolicy(password); err != nil {
		return nil, err
	}
	for _, k := range []string{schema.FieldVerified} {
		if _, ok := body[k]; ok {
			return nil, fieldErr(k, "read_only", k+" is set by the server")
		}
	}
	rest := make(map[string]json.RawMessage, len(body))
	for k, v := range body {
		if k != "password" {
			rest[k] = v
		}
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}
	created, err := s.o.Records.Create(ctx, collection, rest, records.WriteOptions{
		Set: schema.Values{schema.FieldPasswordHash: hash, schema.FieldVerified: false},
	})
	if err != nil {
		return nil, err
	}
	return created.Record, nil
}

func fieldErr(field, code, msg string) error {
	return &apperr.Error{Kind: apperr.Invalid, Msg: "the request is invalid",
		Fields: []schema.FieldError{{Field: field, Code: code, Message: msg}}}
}

var errDenied = apperr.New(apperr.Unauthorized, "the email or password is wrong")

// Login checks an email and password and opens a session.
func (s *Service) Login(ctx context.Context, collection, email, password string, cl auth.Client) (*Tokens, error) {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	email = strings.TrimSpace(email)
	keys := Keys(collection, email, cl.IP)
	if err := s.throttle.Check(ctx, keys, s.o.Now()); err != nil {
		s.o.Logger.WarnContext(ctx, "security: login refused while locked", "collection", collection, "ip", cl.IP)
		return nil, err
	}
	deny := func(reason string, rec string) error {
		s.o.Logger.InfoContext(ctx, "security: login failed", "collection", collection, "record", rec, "reason", reason, "ip", cl.IP)
		if err := s.throttle.Fail(ctx, keys, s.o.Now()); err != nil {
			return err
		}
		if err := audit.Log(ctx, s.o.DB, audit.Event{Event: "login.failed", Target: rec, ActorCollection: collection,
			Detail: map[string]string{"email": email, "reason": reason}}); err != nil {
			return err
		}
		return errDenied
	}
	rec, err := store.FindRecordBy(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, schema.FieldEmail, email)
	if errors.Is(err, store.ErrNotFound) {
		auth.CheckPassword(s.decoy(), password) // take as long as a real check
		return nil, deny("unknown email", "")
	}
	if err != nil {
		return nil, err
	}
	hash, _ := rec.Values[schema.FieldPasswordHash].(string)
	if hash == "" {
		auth.CheckPassword(s.decoy(), password)
		return nil, deny("no password set", rec.ID)
	}
	ok, rehash, err := auth.CheckPassword(hash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, deny("wrong password", rec.ID)
	}
	if err := s.throttle.Succeed(ctx, keys); err != nil {
		return nil, err
	}
	if rehash {
		if h, err := auth.HashPassword(password); err == nil {
			err = s.o.DB.Write(ctx, func(tx *store.Tx) error { return store.SetField(ctx, tx, c, rec.ID, schema.FieldPasswordHash, h) })
			if err != nil {
				return nil, err
			}
		}
	}
	if err := s.checkAuthRule(ctx, c, rec); err != nil {
		return nil, err
	}
	if mfa, err := store.FindMFA(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), collection, rec.ID, false); err == nil && mfa.Enabled {
		return s.mfaChallenge(rec, collection)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return s.openSession(ctx, rec, collection, cl)
}

// openSession starts a session for rec and answers its tokens.
func (s *Service) openSession(ctx context.Context, rec *schema.Record, collection string, cl auth.Client) (*Tokens, error) {
	now := s.o.Now().UTC()
	sess := &store.Session{ID: records.NewID(), Collection: collection, RecordID: rec.ID, Created: now,
		Expires: now.Add(s.o.RefreshTTL), UserAgent: cl.UserAgent, IP: cl.IP}
	refresh := newToken()
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		if err := store.InsertSession(ctx, tx, sess); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, audit.Event{Event: "login", Actor: rec.ID, ActorCollection: collection, Target: rec.ID,
			Detail: map[string]any{"session": sess.ID}}); err != nil {
			return err
		}
		return store.InsertRefreshToken(ctx, tx, hashToken(refresh), sess.ID, now)
	})
	if err != nil {
		return nil, err
	}
	s.o.Logger.InfoContext(ctx, "security: login", "collection", collection, "record", rec.ID, "session", sess.ID, "ip", cl.IP)
	return s.tokens(rec, sess, refresh, now)
}

func (s *Service) tokens(rec *schema.Record, sess *store.Session, refresh string, now time.Time) (*Tokens, error) {
	access, err := s.o.Signer.Issue(auth.Principal{ID: rec.ID, Role: auth.RoleUser, Collection: sess.Collection, SessionID: sess.ID}, s.o.AccessTTL, now)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.o.AccessTTL.Seconds()), Record: rec}, nil
}

var errBadRefresh = apperr.New(apperr.Unauthorized, "the refresh token is invalid, expired or revoked")

// Refresh trades a refresh token for new tokens. Each refresh token works
// once: a second use means it was stolen, and the whole session is revoked.
func (s *Service) Refresh(ctx context.Context, collection, token string, cl auth.Client) (*Tokens, error) {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	next := newToken()
	var sess *store.Session
	var reused bool
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		sid, used, err := store.UseRefreshToken(ctx, tx, hashToken(token), now)
		if err != nil {
			return err
		}
		if sess, err = store.FindSession(ctx, tx, tx.Dialect, sid); err != nil {
			return err
		}
		if used {
			// Commit the revocation, then refuse.
			reused = true
			if err := store.RevokeSession(ctx, tx, sid, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return audit.Append(ctx, tx, audit.Event{Event: "refresh.reused", Actor: sess.RecordID, ActorCollection: sess.Collection,
				Target: sess.RecordID, Detail: map[string]string{"session": sid}})
		}
		if !sess.Active(now) || sess.Collection != collection {
			return store.ErrNotFound
		}
		if err := store.ExtendSession(ctx, tx, sid, now.Add(s.o.RefreshTTL)); err != nil {
			return err
		}
		return store.InsertRefreshToken(ctx, tx, hashToken(next), sid, now)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, err
	}
	if reused {
		s.o.Logger.WarnContext(ctx, "security: refresh token reused; session revoked",
			"collection", collection, "record", sess.RecordID, "session", sess.ID, "ip", cl.IP, "user_agent", cl.UserAgent)
		return nil, errBadRefresh
	}
	rec, err := store.GetRecord(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, sess.RecordID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkAuthRule(ctx, c, rec); err != nil {
		return nil, err
	}
	return s.tokens(rec, sess, next, now)
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p *auth.Principal) error {
	if p == nil || p.SessionID == "" {
		return apperr.New(apperr.Unauthorized, "sign in first")
	}
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		if err := store.RevokeSession(ctx, tx, p.SessionID, s.o.Now().UTC()); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "logout", Target: p.ID, Detail: map[string]string{"session": p.SessionID}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// Me returns the caller's own record.
func (s *Service) Me(ctx context.Context, collection string, p *auth.Principal) (*schema.Record, error) {
	if err := s.own(collection, p); err != nil {
		return nil, err
	}
	return s.o.Records.Get(ctx, collection, p.ID)
}

// CheckSession fails when the session of p's token has ended or its
// account is gone. It returns the account's record, read with the session
// in one query: what the request's rules know as @request.auth.
func (s *Service) CheckSession(ctx context.Context, p *auth.Principal) (*schema.Record, error) {
	c, err := s.o.Records.Collection(ctx, p.Collection)
	if err != nil {
		return nil, apperr.New(apperr.Unauthorized, "the account's collection is gone; sign in again")
	}
	sess, rec, err := store.FindSessionAccount(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, p.SessionID, p.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !sess.Active(s.o.Now())) {
		return nil, apperr.New(apperr.Unauthorized, "the session has ended; sign in again")
	}
	return rec, err
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how refresh tokens are stored: they are random, so a fast
// hash is enough.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// SessionInfo is a session as its owner sees it.
type SessionInfo struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	UserAgent string    `json:"user_agent"`
	IP        string    `json:"ip"`
	Current   bool      `json:"current"`
}

func (s *Service) own(collection string, p *auth.Principal) error {
	if p == nil || p.Role != auth.RoleUser || p.Collection != collection {
		return apperr.New(apperr.Unauthorized, "sign in to %s first", collection)
	}
	return nil
}

// Sessions lists the caller's active sessions.
func (s *Service) Sessions(ctx context.Context, collection string, p *auth.Principal) ([]SessionInfo, error) {
	if err := s.own(collection, p); err != nil {
		return nil, err
	}
	list, err := store.ListSessions(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), collection, p.ID, s.o.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, len(list))
	for i, ss := range list {
		out[i] = SessionInfo{ID: ss.ID, Created: ss.Created, Expires: ss.Expires, UserAgent: ss.UserAgent, IP: ss.IP, Current: ss.ID == p.SessionID}
	}
	return out, nil
}

// RevokeSession ends one of the caller's sessions.
func (s *Service) RevokeSession(ctx context.Context, collection string, p *auth.Principal, id string) error {
	if err := s.own(collection, p); err != nil {
		return err
	}
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		sess, err := store.FindSession(ctx, tx, tx.Dialect, id)
		if err != nil {
			return err
		}
		if sess.Collection != collection || sess.RecordID != p.ID {
			return store.ErrNotFound // another's session is none of the caller's business
		}
		if err := store.RevokeSession(ctx, tx, id, s.o.Now().UTC()); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "session.revoked", Target: p.ID, Detail: map[string]string{"session": id}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return apperr.New(apperr.NotFound, "no active session %q", id)
	}
	return err
}

// RevokeAll ends every session of the caller, the current one included.
func (s *Service) RevokeAll(ctx context.Context, collection string, p *auth.Principal) (int64, error) {
	if err := s.own(collection, p); err != nil {
		return 0, err
	}
	var n int64
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		if n, err = store.RevokeSessions(ctx, tx, collection, p.ID, s.o.Now().UTC()); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "sessions.revoked", Target: p.ID, Detail: map[string]int64{"count": n}})
	})
	s.o.Logger.InfoContext(ctx, "security: all sessions revoked", "collection", collection, "record", p.ID, "count", n)
	return n, err
}

// Throttle is the guard against password guessing, for other sign-ins
// (superusers) to share.
func (s *Service) Throttle() *Throttle { return s.throttle }

// checkPolicy refuses a password users may not choose: too short, too long,
// or on the blocklist.
func (s *Service) checkPolicy(password string) error {
	if n := utf8.RuneCountInString(password); n < s.o.MinPassword || n > 256 {
		return fieldErr("password", "weak_password", fmt.Sprintf("password must be %d to 256 characters", s.o.MinPassword))
	}
	if s.o.Blocklist[strings.ToLower(password)] {
		return fieldErr("password", "breached_password", "this password is on a list of known or breached passwords; choose another")
	}
	return nil
}

// LoadBlocklist reads a file of passwords, one per line.
func LoadBlocklist(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password blocklist: %w", err)
	}
	set := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			set[strings.ToLower(line)] = true
		}
	}
	return set, nil
}

// checkAuthRule refuses to sign in an account whose record does not meet
// the collection's auth rule.
func (s *Service) checkAuthRule(ctx context.Context, c *schema.Collection, rec *schema.Record) error {
	if c.Rules.Auth == nil || strings.TrimSpace(*c.Rules.Auth) == "" {
		return nil
	}
	e, err := query.Parse(*c.Rules.Auth)
	if err != nil {
		return fmt.Errorf("auth rule of %s: %w", c.Name, err)
	}
	self := map[string]any{"id": rec.ID, "collection": c.Name}
	for k, v := range rec.Values {
		if _, ok := self[k]; !ok {
			self[k] = v
		}
	}
	lookup := func(name string) *schema.Collection {
		col, _ := s.o.Records.Collection(ctx, name)
		return col
	}
	env := &query.Env{Dialect: s.o.DB.Dialect(), Collection: c, Lookup: lookup,
		Request: &query.Request{Auth: self, AuthSchema: c, Method: "POST", Now: s.o.Now()}}
	fetch := func(ctx context.Context, collection, id string) (*schema.Record, error) {
		col := lookup(collection)
		if col == nil {
			return nil, nil
		}
		r, err := store.GetRecord(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), col, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return r, err
	}
	ok, err := env.Eval(ctx, e, rec, fetch)
	if err != nil {
		return fmt.Errorf("auth rule of %s: %w", c.Name, err)
	}
	if !ok {
		return apperr.New(apperr.Forbidden, "this account may not sign in to %s now", c.Name)
	}
	return nil
}
