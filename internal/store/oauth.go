package store

import (
	"github.com/strata-dev/strata/internal/schema"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OAuthState is a sign-in with a provider under way: what the callback
// needs to finish it.
type OAuthState struct {
	State, Collection, Provider string
	Verifier, Nonce             string // PKCE verifier and ID token nonce
	Expires                     time.Time
}

// InsertOAuthState stores a sign-in under way.
func InsertOAuthState(ctx context.Context, tx *Tx, st *OAuthState) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _oauth_states (state, collection, provider, verifier, nonce, expires) VALUES (%s, %s, %s, %s, %s, %s)`,
		a.Add(st.State), a.Add(st.Collection), a.Add(st.Provider), a.Add(st.Verifier), a.Add(st.Nonce), a.Add(Stamp(st.Expires)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert oauth state: %w", err)
	}
	return nil
}

// TakeOAuthState removes and returns the unexpired sign-in with the state,
// or ErrNotFound: a state works once.
func TakeOAuthState(ctx context.Context, tx *Tx, state string, now time.Time) (*OAuthState, error) {
	a := args(tx.Dialect)
	st := OAuthState{State: state}
	var expires string
	err := tx.QueryRowContext(ctx, `SELECT collection, provider, verifier, nonce, expires FROM _oauth_states WHERE state = `+a.Add(state)+forUpdate(tx.Dialect), a.Values...).
		Scan(&st.Collection, &st.Provider, &st.Verifier, &st.Nonce, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find oauth state: %w", err)
	}
	a = args(tx.Dialect)
	if _, err := tx.ExecContext(ctx, `DELETE FROM _oauth_states WHERE state = `+a.Add(state)+` OR expires <= `+a.Add(Stamp(now)), a.Values...); err != nil {
		return nil, fmt.Errorf("delete oauth state: %w", err)
	}
	if t, _ := schema.ParseStoredTime(expires); !now.Before(t) {
		return nil, ErrNotFound
	}
	return &st, nil
}
