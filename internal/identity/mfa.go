package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Second factor: TOTP (RFC 6238, 30 s steps, 6 digits, one step of clock
// skew) plus ten one-time recovery codes, stored hashed.

const (
	mfaTTL        = 5 * time.Minute
	totpPeriod    = 30
	recoveryCodes = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func (s *Service) mfaChallenge(rec *schema.Record, collection string) (*Tokens, error) {
	tok, err := s.o.Signer.Issue(auth.Principal{ID: rec.ID, Role: auth.RoleMFA, Collection: collection}, mfaTTL, s.o.Now())
	if err != nil {
		return nil, err
	}
	return &Tokens{MFAToken: tok, ExpiresIn: int(mfaTTL.Seconds())}, nil
}

// Enrollment is a TOTP secret waiting for its first code.
type Enrollment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
}

// EnrollMFA makes a new TOTP secret for the caller. It takes effect when a
// code from it is confirmed; until then login is unchanged.
func (s *Service) EnrollMFA(ctx context.Context, collection string, p *auth.Principal) (*Enrollment, error) {
	if err := s.own(collection, p); err != nil {
		return nil, err
	}
	rec, err := s.o.Records.Get(ctx, collection, p.ID)
	if err != nil {
		return nil, err
	}
	if m, err := store.FindMFA(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), collection, p.ID, false); err == nil && m.Enabled {
		return nil, apperr.New(apperr.Conflict, "a second factor is already on; turn it off first")
	}
	email, _ := rec.Values[schema.FieldEmail].(string)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Strata", AccountName: email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		return store.PutMFA(ctx, tx, &store.MFA{Collection: collection, RecordID: p.ID, Secret: key.Secret(), Recovery: "[]"})
	})
	if err != nil {
		return nil, err
	}
	return &Enrollment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmMFA turns the second factor on with a first code and returns the
// recovery codes, shown this once.
func (s *Service) ConfirmMFA(ctx context.Context, collection string, p *auth.Principal, code string) ([]string, error) {
	if err := s.own(collection, p); err != nil {
		return nil, err
	}
	codes := make([]string, recoveryCodes)
	hashes := make([]string, recoveryCodes)
	for i := range codes {
		codes[i] = randomID()
		hashes[i] = hashToken(codes[i])
	}
	rec, _ := json.Marshal(hashes)
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		m, err := store.FindMFA(ctx, tx, tx.Dialect, collection, p.ID, true)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.Conflict, "enroll first: POST mfa/enroll")
		}
		if err != nil {
			return err
		}
		if m.Enabled {
			return apperr.New(apperr.Conflict, "the second factor is already on")
		}
		if !s.checkTOTP(m, code) {
			return apperr.New(apperr.Invalid, "the code is wrong or expired")
		}
		m.Enabled, m.Recovery = true, string(rec)
		if err := store.PutMFA(ctx, tx, m); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "mfa.enabled", Target: p.ID})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableMFA turns the second factor off; it takes a current code.
func (s *Service) DisableMFA(ctx context.Context, collection string, p *auth.Principal, code string) error {
	if err := s.own(collection, p); err != nil {
		return err
	}
	return s.o.DB.Write(ctx, func(tx *store.Tx) error {
		m, err := store.FindMFA(ctx, tx, tx.Dialect, collection, p.ID, true)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.NotFound, "no second factor is on")
		}
		if err != nil {
			return err
		}
		if !s.checkTOTP(m, code) {
			return apperr.New(apperr.Invalid, "the code is wrong or expired")
		}
		if err := store.DeleteMFA(ctx, tx, collection, p.ID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "mfa.disabled", Target: p.ID})
	})
}

// checkTOTP accepts a code of the current step (or one step off) that is
// newer than the last one accepted, and records its step: a code works
// once.
func (s *Service) checkTOTP(m *store.MFA, code string) bool {
	now := s.o.Now()
	for _, off := range []int64{0, -1, 1} {
		t := now.Add(time.Duration(off*totpPeriod) * time.Second)
		step := t.Unix() / totpPeriod
		if step <= m.LastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(m.Secret, t, totpOpts)
		if err == nil && len(code) == len(want) && want == code {
			m.LastStep = step
			return true
		}
	}
	return false
}

var errBadMFA = apperr.New(apperr.Unauthorized, "the code is wrong, or the MFA token expired; sign in again")

// VerifyMFA completes a login that owes its second factor, with a TOTP
// code or a recovery code (used up).
func (s *Service) VerifyMFA(ctx context.Context, collection, mfaToken, code, recovery string, cl auth.Client) (*Tokens, error) {
	claims, err := s.o.Signer.Verify(mfaToken, s.o.Now())
	if err != nil || claims.Role != auth.RoleMFA || claims.Collection != collection {
		return nil, errBadMFA
	}
	keys := []string{"mfa:" + collection + ":" + claims.Subject, "ip:" + cl.IP}
	if err := s.throttle.Check(ctx, keys, s.o.Now()); err != nil {
		return nil, err
	}
	ok := false
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		m, err := store.FindMFA(ctx, tx, tx.Dialect, collection, claims.Subject, true)
		if err != nil {
			return err
		}
		switch {
		case code != "":
			ok = m.Enabled && s.checkTOTP(m, code)
		case recovery != "":
			var hashes []string
			json.Unmarshal([]byte(m.Recovery), &hashes)
			h := hashToken(strings.TrimSpace(recovery))
			for i, x := range hashes {
				if x == h {
					ok = true
					hashes = append(hashes[:i], hashes[i+1:]...)
					break
				}
			}
			b, _ := json.Marshal(hashes)
			m.Recovery = string(b)
		}
		if !ok {
			return nil
		}
		return store.PutMFA(ctx, tx, m)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadMFA
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := s.throttle.Fail(ctx, keys, s.o.Now()); err != nil {
			return nil, err
		}
		if err := audit.Log(ctx, s.o.DB, audit.Event{Event: "mfa.failed", Actor: claims.Subject, ActorCollection: collection, Target: claims.Subject}); err != nil {
			return nil, err
		}
		return nil, errBadMFA
	}
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	rec, err := store.GetRecord(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, claims.Subject)
	if err != nil {
		return nil, errBadMFA
	}
	return s.openSession(ctx, rec, collection, cl)
}
