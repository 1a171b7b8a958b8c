package rest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/pquerna/otp/totp"

	"github.com/strata-dev/strata/internal/auth"
)

func (e *testEnv) as(token, method, path string, body any) *response {
	e.t.Helper()
	return e.send(method, path, body, "Authorization", "Bearer "+token)
}

func TestUserSignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth",
			"fields": []any{map[string]any{"name": "nick", "type": "text", "required": true}},
			"rules":  map[string]any{"create": ""}}).status(201)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "staff", "type": "auth"}).status(201)
		base := "/api/v1/auth/members/"

		// Register.
		reg := e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password", "nick": "ada"}).status(201).json()
		if _, ok := reg["password_hash"]; ok || reg["email"] != "ada@example.com" || reg["verified"] != false {
			t.Errorf("registered record: %v", reg)
		}
		e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password", "nick": "x"}).problem(409)
		e.anon("POST", base+"register", map[string]any{"email": "bob@example.com", "password": "short", "nick": "x"}).problem(400)
		e.anon("POST", base+"register", map[string]any{"email": "bob@example.com", "nick": "x"}).problem(400)
		e.anon("POST", base+"register", map[string]any{"email": "bob@example.com", "password": "a long password"}).problem(400)
		e.anon("POST", base+"register", map[string]any{"email": "bob@example.com", "password": "a long password", "nick": "b", "verified": true}).problem(400)
		e.anon("POST", "/api/v1/auth/staff/register", map[string]any{"email": "eve@example.com", "password": "a long password"}).problem(403)
		e.anon("POST", "/api/v1/auth/posts/register", map[string]any{"email": "eve@example.com", "password": "a long password"}).problem(404)

		// Login: one answer for a wrong password and an unknown email.
		wrong := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "wrong password"}).problem(401)
		unknown := e.anon("POST", base+"login", map[string]any{"email": "nobody@example.com", "password": "wrong password"}).problem(401)
		if wrong["detail"] != unknown["detail"] {
			t.Errorf("login answers reveal which emails exist: %q vs %q", wrong["detail"], unknown["detail"])
		}
		login := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(200).json()
		access, refresh := login["access_token"].(string), login["refresh_token"].(string)
		if login["token_type"] != "Bearer" || login["expires_in"].(float64) <= 0 || login["record"].(map[string]any)["id"] != reg["id"] {
			t.Errorf("login answer: %v", login)
		}

		// The token carries its key id, published in the JWKS.
		header, _ := base64.RawURLEncoding.DecodeString(strings.Split(access, ".")[0])
		var h map[string]any
		json.Unmarshal(header, &h)
		jwks := e.anon("GET", "/.well-known/jwks.json", nil).status(200).json()
		key := jwks["keys"].([]any)[0].(map[string]any)
		if h["kid"] == nil || h["kid"] != key["kid"] || h["alg"] != "EdDSA" || key["crv"] != "Ed25519" {
			t.Errorf("token header %v, jwks %v", h, jwks)
		}

		me := e.as(access, "GET", base+"me", nil).status(200).json()
		if me["id"] != reg["id"] || me["nick"] != "ada" {
			t.Errorf("me: %v", me)
		}
		e.as(access, "GET", "/api/v1/auth/staff/me", nil).problem(401)
		e.anon("GET", base+"me", nil).problem(401)
		// Users are not superusers.
		e.as(access, "GET", "/api/v1/collections", nil).problem(403)

		// Refresh rotates the token; a reused one revokes the session.
		r1 := e.anon("POST", base+"refresh", map[string]any{"refresh_token": refresh}).status(200).json()
		refresh2, access2 := r1["refresh_token"].(string), r1["access_token"].(string)
		if refresh2 == refresh {
			t.Fatal("refresh token not rotated")
		}
		e.as(access2, "GET", base+"me", nil).status(200)
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": refresh}).problem(401) // replay
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": refresh2}).problem(401)
		e.as(access2, "GET", base+"me", nil).problem(401)
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": "made-up"}).problem(401)
		e.anon("POST", "/api/v1/auth/staff/refresh", map[string]any{"refresh_token": refresh2}).problem(401)

		// Logout ends the session.
		l2 := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(200).json()
		tok := l2["access_token"].(string)
		e.as(tok, "GET", base+"me", nil).status(200)
		e.as(tok, "POST", base+"logout", nil).status(204)
		e.as(tok, "GET", base+"me", nil).problem(401)
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": l2["refresh_token"]}).problem(401)

		// Access tokens expire.
		l3 := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(200).json()
		e.skew = 16 * time.Minute
		e.as(l3["access_token"].(string), "GET", base+"me", nil).problem(401)
		fresh := e.anon("POST", base+"refresh", map[string]any{"refresh_token": l3["refresh_token"]}).status(200).json()
		e.as(fresh["access_token"].(string), "GET", base+"me", nil).status(200)
		e.skew = 0
	})
}

func TestSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
		base := "/api/v1/auth/members/"
		login := func(email string) string {
			return e.anon("POST", base+"login", map[string]any{"email": email, "password": "a long password"}).status(200).json()["access_token"].(string)
		}
		for _, m := range []string{"ada@example.com", "bob@example.com"} {
			e.anon("POST", base+"register", map[string]any{"email": m, "password": "a long password"}).status(201)
		}
		phone, laptop, tablet := login("ada@example.com"), login("ada@example.com"), login("ada@example.com")
		bob := login("bob@example.com")

		list := e.as(laptop, "GET", base+"sessions", nil).status(200).json()["items"].([]any)
		if len(list) != 3 {
			t.Fatalf("ada has %d sessions, want 3", len(list))
		}
		current := 0
		var phoneSession string
		for _, s := range list {
			s := s.(map[string]any)
			if s["current"] == true {
				current++
			}
		}
		if current != 1 {
			t.Errorf("%d sessions marked current", current)
		}
		// Find the phone's session: the one the phone sees as current.
		for _, s := range e.as(phone, "GET", base+"sessions", nil).status(200).json()["items"].([]any) {
			if s := s.(map[string]any); s["current"] == true {
				phoneSession = s["id"].(string)
			}
		}
		e.as(bob, "DELETE", base+"sessions/"+phoneSession, nil).problem(404) // not bob's
		e.as(phone, "GET", base+"me", nil).status(200)
		e.as(laptop, "DELETE", base+"sessions/"+phoneSession, nil).status(204)
		e.as(phone, "GET", base+"me", nil).problem(401)
		e.as(laptop, "GET", base+"me", nil).status(200)

		e.as(tablet, "DELETE", base+"sessions", nil).status(204)
		e.as(laptop, "GET", base+"me", nil).problem(401)
		e.as(tablet, "GET", base+"me", nil).problem(401)
		e.as(bob, "GET", base+"me", nil).status(200)
		e.anon("GET", base+"sessions", nil).problem(401)
	})
}

// TestSessionAccount: a request signed in as a user acts as the account
// as it is now, read with its session, not as it was at sign-in; the
// token of an account deleted since is refused on every route, and a
// session's token works only for the account and collection it was made
// for.
func TestSessionAccount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth",
			"fields": []any{map[string]any{"name": "level", "type": "number"}}, "rules": map[string]any{"create": ""}}).status(201)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "notes", "type": "base",
			"fields": []any{map[string]any{"name": "text", "type": "text"}},
			"rules":  map[string]any{"view": "@request.auth.level >= 2", "list": "@request.auth.level >= 2"}}).status(201)
		note := e.request("POST", "/api/v1/collections/notes/records", map[string]any{"text": "x"}).status(201).json()["id"].(string)
		base := "/api/v1/auth/members/"
		creds := map[string]any{"email": "ada@example.com", "password": "a long password"}
		ada := e.anon("POST", base+"register", creds).status(201).json()["id"].(string)
		e.anon("POST", base+"register", map[string]any{"email": "bob@example.com", "password": "a long password"}).status(201)
		tok := e.anon("POST", base+"login", creds).status(200).json()["access_token"].(string)
		bob := e.anon("POST", base+"login", map[string]any{"email": "bob@example.com", "password": "a long password"}).status(200).json()["access_token"].(string)

		view := "/api/v1/collections/notes/records/" + note
		e.as(tok, "GET", view, nil).problem(404)
		e.request("PATCH", "/api/v1/collections/members/records/"+ada, map[string]any{"level": 2}).status(200)
		e.as(tok, "GET", view, nil).status(200)
		e.request("PATCH", "/api/v1/collections/members/records/"+ada, map[string]any{"level": 1}).status(200)
		e.as(tok, "GET", view, nil).problem(404)

		// Tokens signed with the server's key whose subject or collection
		// is not the session's.
		sess := e.claims(tok).SessionID
		e.as(e.userToken(e.claims(bob).Subject, "members", sess), "GET", base+"me", nil).problem(401)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "staff", "type": "auth"}).status(201)
		e.as(e.userToken(ada, "staff", sess), "GET", "/api/v1/auth/staff/me", nil).problem(401)
		e.as(e.userToken(ada, "members", sess), "GET", base+"me", nil).status(200)

		e.request("DELETE", "/api/v1/collections/members/records/"+ada, nil).status(204)
		e.as(tok, "GET", view, nil).problem(401)
		e.as(tok, "GET", base+"me", nil).problem(401)
		e.as(tok, "GET", "/api/v1/collections/notes/records", nil).problem(401)
		e.as(bob, "GET", base+"me", nil).status(200)
	})
}

// claims returns the claims of a token the server signed.
func (e *testEnv) claims(token string) *auth.Claims {
	e.t.Helper()
	c, err := e.signer.Verify(token, e.clock())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// userToken signs an access token for the user id of collection in
// session, as the server's own key would.
func (e *testEnv) userToken(id, collection, session string) string {
	e.t.Helper()
	tok, err := e.signer.Issue(auth.Principal{ID: id, Role: auth.RoleUser, Collection: collection, SessionID: session}, time.Minute, e.clock())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// TestLoginThrottle: failures lock sign-in for growing times, per account
// and per address, with 429 and Retry-After; the counts are in the database,
// so a new service over it (a restart) still refuses.
func TestLoginThrottle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
		base := "/api/v1/auth/members/"
		e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(201)
		wrong := map[string]any{"email": "ada@example.com", "password": "not the password"}
		right := map[string]any{"email": "ada@example.com", "password": "a long password"}
		for range 6 {
			e.anon("POST", base+"login", wrong).problem(401)
		}
		locked := e.anon("POST", base+"login", right)
		locked.problem(429)
		if ra := locked.Header().Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After = %q, want 1", ra)
		}
		e.skew = 2 * time.Second
		e.anon("POST", base+"login", wrong).problem(401) // 7th failure: 2s
		e.anon("POST", base+"login", right).problem(429)
		e.skew = 5 * time.Second
		e.anon("POST", base+"login", right).status(200)
		// A success clears the account, not the address: the address has 7
		// failures, and one more locks it for every account.
		e.skew = 10 * time.Second
		e.anon("POST", base+"login", map[string]any{"email": "nobody@example.com", "password": "guess guess"}).problem(401)
		e.anon("POST", base+"login", right).problem(429)
		// Superuser sign-in is guarded by the same counters.
		e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail, "password": adminPassword}).problem(429)
		e.skew = 10 * time.Minute
		e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail, "password": adminPassword}).status(200)
		e.skew = 0
	})
}

func TestAuditLog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
		base := "/api/v1/auth/members/"
		e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(201)
		e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "wrong password"}, "User-Agent", "guesser/1").problem(401)
		l := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(200).json()
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": l["refresh_token"]}).status(200)
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": l["refresh_token"]}).problem(401)

		events := func(filter string) []map[string]any {
			m := e.request("GET", "/api/v1/audit?sort=created&filter="+url.QueryEscape(filter), nil).status(200).json()
			var out []map[string]any
			for _, it := range m["items"].([]any) {
				out = append(out, it.(map[string]any))
			}
			return out
		}
		all := events("")
		var kinds []string
		for _, ev := range all {
			kinds = append(kinds, ev["event"].(string))
		}
		want := "[login collection.create login.failed login refresh.reused]"
		if fmt.Sprint(kinds) != want {
			t.Errorf("events %v, want %s", kinds, want)
		}
		failed := events(`event = "login.failed" && user_agent ~ "guesser"`)
		if len(failed) != 1 || failed[0]["ip"] == "" || failed[0]["detail"].(map[string]any)["email"] != "ada@example.com" {
			t.Errorf("failed login entry: %v", failed)
		}
		schemaChange := events(`event = "collection.create"`)
		if len(schemaChange) != 1 || schemaChange[0]["target"] != "members" || schemaChange[0]["actor_collection"] != "_superusers" {
			t.Errorf("schema change entry: %v", schemaChange)
		}
		// Users may not read it; nobody can write it.
		e.as(l["access_token"].(string), "GET", "/api/v1/audit", nil).problem(401) // its session was revoked by the reuse
		e.anon("GET", "/api/v1/audit", nil).problem(401)
		e.request("DELETE", "/api/v1/audit", nil).problem(405)
		e.request("GET", "/api/v1/collections/_audit/records", nil).problem(404)
	})
}

func TestMFA(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
		base := "/api/v1/auth/members/"
		creds := map[string]any{"email": "ada@example.com", "password": "a long password"}
		e.anon("POST", base+"register", creds).status(201)
		tok := e.anon("POST", base+"login", creds).status(200).json()["access_token"].(string)

		en := e.as(tok, "POST", base+"mfa/enroll", nil).status(200).json()
		secret := en["secret"].(string)
		if !strings.HasPrefix(en["otpauth_uri"].(string), "otpauth://totp/Strata:ada@example.com?") {
			t.Errorf("otpauth uri: %v", en["otpauth_uri"])
		}
		code := func(at time.Time) string {
			c, err := totp.GenerateCode(secret, at)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// Until confirmed, login is unchanged.
		e.anon("POST", base+"login", creds).status(200)
		e.as(tok, "POST", base+"mfa/confirm", map[string]any{"code": "000000"}).problem(400)
		conf := e.as(tok, "POST", base+"mfa/confirm", map[string]any{"code": code(e.clock())}).status(200).json()
		recovery := conf["recovery_codes"].([]any)
		if len(recovery) != 10 {
			t.Fatalf("recovery codes: %v", recovery)
		}

		// Login now answers a challenge, not tokens.
		e.skew = 30 * time.Second // a new TOTP step: the confirm code is spent
		ch := e.anon("POST", base+"login", creds).status(200).json()
		if ch["mfa_required"] != true || ch["access_token"] != nil {
			t.Fatalf("login with MFA: %v", ch)
		}
		mfaToken := ch["mfa_token"].(string)
		e.as(mfaToken, "GET", base+"me", nil).problem(401) // not an access token
		e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "code": "123456"}).problem(401)
		good := code(e.clock())
		ok := e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "code": good}).status(200).json()
		e.as(ok["access_token"].(string), "GET", base+"me", nil).status(200)
		e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "code": good}).problem(401) // a code works once

		// A recovery code works once.
		rc := recovery[0].(string)
		e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "recovery_code": rc}).status(200)
		e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "recovery_code": rc}).problem(401)
		// Challenges expire; tokens of another collection do not fit.
		e.skew = 10 * time.Minute
		e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": mfaToken, "recovery_code": recovery[1].(string)}).problem(401)

		// Turning it off takes a code.
		tok2 := ok["access_token"].(string)
		e.skew = 60 * time.Second
		tok2 = e.anon("POST", base+"mfa/verify", map[string]any{"mfa_token": e.anon("POST", base+"login", creds).status(200).json()["mfa_token"], "recovery_code": recovery[2].(string)}).status(200).json()["access_token"].(string)
		e.as(tok2, "POST", base+"mfa/disable", map[string]any{"code": "999999"}).problem(400)
		e.as(tok2, "POST", base+"mfa/disable", map[string]any{"code": code(e.clock())}).status(204)
		if e.anon("POST", base+"login", creds).status(200).json()["access_token"] == nil {
			t.Errorf("login still asks for a second factor after disabling it")
		}
		e.skew = 0
	})
}

func TestPasswordResetAndVerify(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
		base := "/api/v1/auth/members/"
		e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(201)
		old := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(200).json()["access_token"].(string)

		// Unknown and known addresses get the same answer; only one mail goes out.
		unknown := e.anon("POST", base+"password/reset/request", map[string]any{"email": "nobody@example.com"})
		known := e.anon("POST", base+"password/reset/request", map[string]any{"email": "ada@example.com"})
		if unknown.Code != 202 || known.Code != 202 || unknown.Body.String() != known.Body.String() {
			t.Errorf("answers differ: %d %s / %d %s", unknown.Code, unknown.Body, known.Code, known.Body)
		}
		m := e.mail.next(t)
		if m.to != "ada@example.com" || m.from != "strata@example.com" || !strings.Contains(m.data, "Subject: Reset your password") {
			t.Errorf("mail: %+v", m)
		}
		code := m.code(t)
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": code, "password": "short"}).problem(400)
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": "made-up", "password": "a new long password"}).problem(400)
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": code, "password": "a new long password"}).status(204)
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": code, "password": "another password!"}).problem(400) // used
		e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).problem(401)
		e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a new long password"}).status(200)
		e.as(old, "GET", base+"me", nil).problem(401) // a reset ends every session

		// Reset codes expire after an hour.
		e.anon("POST", base+"password/reset/request", map[string]any{"email": "ada@example.com"}).status(202)
		late := e.mail.next(t).code(t)
		e.skew = 2 * time.Hour
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": late, "password": "a third long password"}).problem(400)
		e.skew = 0

		// Verification.
		e.anon("POST", base+"verify/request", map[string]any{"email": "ada@example.com"}).status(202)
		vm := e.mail.next(t)
		if !strings.Contains(vm.data, "Subject: Confirm your email address") {
			t.Errorf("verify mail: %s", vm.data)
		}
		e.anon("POST", base+"password/reset/confirm", map[string]any{"token": vm.code(t), "password": "a new long password"}).problem(400) // wrong kind
		e.anon("POST", base+"verify/confirm", map[string]any{"token": vm.code(t)}).status(204)
		tok := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a new long password"}).status(200).json()["access_token"].(string)
		if e.as(tok, "GET", base+"me", nil).status(200).json()["verified"] != true {
			t.Errorf("not verified")
		}
		sent := e.mail.count()
		e.anon("POST", base+"verify/request", map[string]any{"email": "ada@example.com"}).status(202) // already verified: no mail
		e.anon("POST", base+"verify/request", map[string]any{"email": "nobody@example.com"}).status(202)
		time.Sleep(50 * time.Millisecond)
		if n := e.mail.count(); n != sent {
			t.Errorf("%d mails sent for verified or unknown addresses", n-sent)
		}
	})
}

// TestOIDCSignIn signs in through a real OpenID Connect provider running on
// loopback: the authorization code flow with PKCE, state and nonce.
func TestOIDCSignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		op, err := mockoidc.Run()
		if err != nil {
			t.Fatal(err)
		}
		defer op.Shutdown()
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""},
			"oauth2": []any{map[string]any{"name": "acme", "issuer": op.Issuer(), "client_id": op.ClientID, "client_secret": op.ClientSecret}}}).status(201)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "staff", "type": "auth",
			"oauth2": []any{map[string]any{"name": "acme", "issuer": op.Issuer(), "client_id": op.ClientID, "client_secret": op.ClientSecret}}}).status(201)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

		// signIn runs the browser's part: Strata → provider → Strata.
		signIn := func(collection string, user *mockoidc.MockUser) *response {
			t.Helper()
			op.QueueUser(user)
			start := e.anon("GET", "/api/v1/auth/"+collection+"/oauth2/acme", nil).status(302)
			loc, _ := url.Parse(start.Header().Get("Location"))
			if loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("state") == "" || loc.Query().Get("nonce") == "" {
				t.Fatalf("authorize URL lacks PKCE, state or nonce: %s", loc)
			}
			resp, err := client.Get(loc.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back, _ := url.Parse(resp.Header.Get("Location"))
			if back.Path != "/api/v1/auth/"+collection+"/oauth2/acme/callback" {
				t.Fatalf("the provider sent the browser to %s", back)
			}
			return e.anon("GET", back.RequestURI(), nil)
		}

		// A new verified email makes an account, verified.
		m := signIn("members", &mockoidc.MockUser{Subject: "u1", Email: "ada@example.com", EmailVerified: true}).status(200).json()
		rec := m["record"].(map[string]any)
		if rec["email"] != "ada@example.com" || rec["verified"] != true {
			t.Errorf("account: %v", rec)
		}
		e.as(m["access_token"].(string), "GET", "/api/v1/auth/members/me", nil).status(200)

		// The same email signs in to the same account (linked by email).
		again := signIn("members", &mockoidc.MockUser{Subject: "u1", Email: "ada@example.com", EmailVerified: true}).status(200).json()
		if again["record"].(map[string]any)["id"] != rec["id"] {
			t.Errorf("a second sign-in made another account")
		}
		// An unverified email is refused; so is a closed collection.
		signIn("members", &mockoidc.MockUser{Subject: "u2", Email: "eve@example.com", EmailVerified: false}).problem(403)
		signIn("staff", &mockoidc.MockUser{Subject: "u3", Email: "bob@example.com", EmailVerified: true}).problem(403)

		// A state works once, and only a state Strata issued works.
		op.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ada@example.com", EmailVerified: true})
		start := e.anon("GET", "/api/v1/auth/members/oauth2/acme", nil).status(302)
		loc, _ := url.Parse(start.Header().Get("Location"))
		resp, err := client.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		back, _ := url.Parse(resp.Header.Get("Location"))
		e.anon("GET", back.RequestURI(), nil).status(200)
		e.anon("GET", back.RequestURI(), nil).problem(401)
		forged := back.Query()
		forged.Set("state", "made-up")
		e.anon("GET", back.Path+"?"+forged.Encode(), nil).problem(401)
		e.anon("GET", "/api/v1/auth/members/oauth2/nope", nil).problem(404)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "bad", "oauth2": []any{map[string]any{"name": "x", "issuer": "ftp://x", "client_id": "a", "client_secret": "b"}}}).problem(400)
	})
}

func TestAuthRule(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth",
			"rules": map[string]any{"create": "", "auth": "verified = true"}}).status(201)
		base := "/api/v1/auth/members/"
		creds := map[string]any{"email": "ada@example.com", "password": "a long password"}
		id := e.anon("POST", base+"register", creds).status(201).json()["id"].(string)
		e.anon("POST", base+"login", creds).problem(403)
		e.request("PATCH", "/api/v1/collections/members/records/"+id, map[string]any{"verified": true}).status(200)
		l := e.anon("POST", base+"login", creds).status(200).json()
		e.request("PATCH", "/api/v1/collections/members/records/"+id, map[string]any{"verified": false}).status(200)
		e.anon("POST", base+"refresh", map[string]any{"refresh_token": l["refresh_token"]}).problem(403)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "x", "type": "auth", "rules": map[string]any{"auth": "nope = 1"}}).problem(400)
	})
}

// githubLike is an OAuth2 provider with a user API, as GitHub has: it
// speaks the authorization code protocol with PKCE on loopback.
func githubLike(t *testing.T, email string, verified bool) *httptest.Server {
	var mu sync.Mutex
	challenges := map[string]string{} // code -> PKCE challenge
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "gh-client" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", 400)
			return
		}
		code := fmt.Sprint("code-", len(challenges))
		mu.Lock()
		challenges[code] = q.Get("code_challenge")
		mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		mu.Lock()
		want, ok := challenges[r.Form.Get("code")]
		delete(challenges, r.Form.Get("code"))
		mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if id != "gh-client" || secret != "gh-secret" || !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != want {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"gh-token","token_type":"bearer"}`))
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer gh-token" {
				http.Error(w, "unauthorized", 401)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /user", authed(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id": 42, "login": "ada", "email": null}`))
	}))
	mux.HandleFunc("GET /user/emails", authed(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `[{"email":"old@example.com","verified":true,"primary":false},{"email":%q,"verified":%v,"primary":true}]`, email, verified)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestPlainOAuth2SignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		good, unverified := githubLike(t, "ada@example.com", true), githubLike(t, "eve@example.com", false)
		prov := func(name, base string) map[string]any {
			return map[string]any{"name": name, "type": "oauth2", "client_id": "gh-client", "client_secret": "gh-secret",
				"auth_url": base + "/login/oauth/authorize", "token_url": base + "/login/oauth/access_token",
				"userinfo_url": base + "/user", "emails_url": base + "/user/emails"}
		}
		e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""},
			"oauth2": []any{prov("github", good.URL), prov("shady", unverified.URL)}}).status(201)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		signIn := func(provider string) *response {
			t.Helper()
			start := e.anon("GET", "/api/v1/auth/members/oauth2/"+provider, nil).status(302)
			resp, err := client.Get(start.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back, _ := url.Parse(resp.Header.Get("Location"))
			return e.anon("GET", back.RequestURI(), nil)
		}
		m := signIn("github").status(200).json()
		if rec := m["record"].(map[string]any); rec["email"] != "ada@example.com" || rec["verified"] != true {
			t.Errorf("account: %v", rec)
		}
		signIn("shady").problem(403)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "bad", "type": "auth",
			"oauth2": []any{map[string]any{"name": "x", "type": "oauth2", "client_id": "a", "client_secret": "b"}}}).problem(400)
	})
}

// TestBadTokens: every kind of bad token gets a 401 problem document.
func TestBadTokens(t *testing.T) {
	e := newEnv(t, "sqlite")
	parts := strings.Split(e.token, ".")
	other, err := auth.LoadSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Issue(auth.Principal{ID: "x", Role: auth.RoleSuperuser}, time.Hour, time.Now())
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), `"role":"superuser"`, `"role":"superuser","x":1`, 1)
	unknownKid := b64([]byte(`{"alg":"EdDSA","kid":"nope","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	for name, tok := range map[string]string{
		"alg none":         b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"tampered payload": parts[0] + "." + b64([]byte(tampered)) + "." + parts[2],
		"wrong signature":  parts[0] + "." + parts[1] + "." + strings.Split(foreign, ".")[2],
		"foreign key":      foreign,
		"unknown kid":      unknownKid,
		"garbage":          "not-a-token",
	} {
		m := e.anon("GET", "/api/v1/collections", nil, "Authorization", "Bearer "+tok)
		m.t = t
		if p := m.problem(401); p["detail"] == "" {
			t.Errorf("%s: %v", name, p)
		}
	}
	e.request("GET", "/api/v1/collections", nil).status(200)
}
