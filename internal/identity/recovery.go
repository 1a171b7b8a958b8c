package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Password reset and email verification: a request mails a one-time token
// (stored hashed) and answers the same whether or not the address is known;
// a confirmation spends the token.

const (
	resetTTL  = time.Hour
	verifyTTL = 24 * time.Hour
)

var errNoMail = apperr.New(apperr.Unavailable, "email is not configured on this server (smtp_url)")

// RequestReset mails a password reset token to the address, if an account
// has it.
func (s *Service) RequestReset(ctx context.Context, collection, email string) error {
	return s.mailToken(ctx, collection, email, "reset", resetTTL, "Reset your password",
		"Someone asked to reset the password of this account. If it was you, use this code within an hour:\n\n    %s\n\nIf it was not you, ignore this email.")
}

// RequestVerify mails an email verification token to the address, if an
// account has it and is not verified yet.
func (s *Service) RequestVerify(ctx context.Context, collection, email string) error {
	return s.mailToken(ctx, collection, email, "verify", verifyTTL, "Confirm your email address",
		"Use this code to confirm your email address:\n\n    %s\n")
}

func (s *Service) mailToken(ctx context.Context, collection, email, kind string, ttl time.Duration, subject, body string) error {
	if s.o.Mailer == nil {
		return errNoMail
	}
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return err
	}
	email = strings.TrimSpace(email)
	rec, err := store.FindRecordBy(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, schema.FieldEmail, email)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the same answer as for a known address
	}
	if err != nil {
		return err
	}
	if v, _ := rec.Values[schema.FieldVerified].(bool); kind == "verify" && v {
		return nil
	}
	token := newToken()
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		if err := store.InsertAuthToken(ctx, tx, hashToken(token), kind, collection, rec.ID, s.o.Now().UTC().Add(ttl)); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: kind + ".requested", Target: rec.ID, ActorCollection: collection})
	})
	if err != nil {
		return err
	}
	// Sent in the background: an answer that waited for the relay would
	// tell, by its time, that the address exists.
	s.mail.Add(1)
	go func() {
		defer s.mail.Done()
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.o.Mailer.Send(mctx, email, subject, fmt.Sprintf(body, token)); err != nil {
			s.o.Logger.ErrorContext(mctx, "email not sent", "kind", kind, "collection", collection, "record", rec.ID, "err", err)
		}
	}()
	return nil
}

var errBadAuthToken = apperr.New(apperr.Invalid, "the code is invalid, used or expired")

// ConfirmReset sets a new password with a reset token and ends every
// session of the account.
func (s *Service) ConfirmReset(ctx context.Context, collection, token, password string) error {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return err
	}
	if err := s.checkPolicy(password); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		id, err := store.UseAuthToken(ctx, tx, hashToken(token), "reset", collection, now)
		if err != nil {
			return err
		}
		if err := store.SetField(ctx, tx, c, id, schema.FieldPasswordHash, hash); err != nil {
			return err
		}
		if _, err := store.RevokeSessions(ctx, tx, collection, id, now); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "password.reset", Actor: id, ActorCollection: collection, Target: id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return errBadAuthToken
	}
	return err
}

// ConfirmVerify marks the account's email as verified.
func (s *Service) ConfirmVerify(ctx context.Context, collection, token string) error {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return err
	}
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		id, err := store.UseAuthToken(ctx, tx, hashToken(token), "verify", collection, s.o.Now().UTC())
		if err != nil {
			return err
		}
		if err := store.SetField(ctx, tx, c, id, schema.FieldVerified, true); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "email.verified", Actor: id, ActorCollection: collection, Target: id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return errBadAuthToken
	}
	return err
}
