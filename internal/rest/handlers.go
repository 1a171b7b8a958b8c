package rest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/httpx"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// readLogin reads an {"email","password"} body.
func (a *API) readLogin(w http.ResponseWriter, r *http.Request) (loginRequest, error) {
	var req loginRequest
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return req, err
	}
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.Email == "" || req.Password == "" {
		return req, apperr.New(apperr.Invalid, "email and password are required")
	}
	return req, nil
}

// readObject reads a body that must be a JSON object, returning its bytes
// and its members.
func (a *API) readObject(w http.ResponseWriter, r *http.Request) ([]byte, map[string]json.RawMessage, error) {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return nil, nil, err
	}
	obj, err := httpx.DecodeObject(body)
	return body, obj, err
}

func (a *API) adminLogin(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readLogin(w, r)
	if err != nil {
		return err
	}
	throttle := a.ident.Throttle()
	keys := identity.Keys("_superusers", req.Email, client(r).IP)
	if err := throttle.Check(r.Context(), keys, a.now()); err != nil {
		return err
	}
	deny := func() error {
		a.log.InfoContext(r.Context(), "security: superuser login failed", "ip", client(r).IP)
		if err := throttle.Fail(r.Context(), keys, a.now()); err != nil {
			return err
		}
		if err := audit.Log(r.Context(), a.db, audit.Event{Event: "login.failed", ActorCollection: "_superusers",
			Detail: map[string]string{"email": req.Email}}); err != nil {
			return err
		}
		return apperr.New(apperr.Unauthorized, "the email or password is wrong")
	}
	u, err := a.db.FindSuperuser(r.Context(), req.Email)
	if errors.Is(err, store.ErrNotFound) {
		auth.CheckPassword(a.dummyHash(), req.Password)
		return deny()
	}
	if err != nil {
		return err
	}
	ok, _, err := auth.CheckPassword(u.PasswordHash, req.Password)
	if err != nil {
		return err
	}
	if !ok {
		return deny()
	}
	if err := throttle.Succeed(r.Context(), keys); err != nil {
		return err
	}
	if err := audit.Log(r.Context(), a.db, audit.Event{Event: "login", Actor: u.ID, ActorCollection: "_superusers", Target: u.ID}); err != nil {
		return err
	}
	tok, err := a.signer.Issue(auth.Principal{ID: u.ID, Role: auth.RoleSuperuser}, a.tokenTTL, a.now())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(a.tokenTTL.Seconds())})
	return nil
}

type collectionList struct {
	Items []*schema.Collection `json:"items"`
}

func (a *API) listCollections(w http.ResponseWriter, r *http.Request) error {
	items := a.recs.Collections()
	if items == nil {
		items = []*schema.Collection{}
	}
	httpx.JSON(w, http.StatusOK, collectionList{Items: items})
	return nil
}

func (a *API) getCollection(w http.ResponseWriter, r *http.Request) error {
	c, err := a.recs.Collection(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, c)
	return nil
}

// collectionInput is what a client may send to create a collection.
type collectionInput struct {
	Name      string                  `json:"name"`
	Type      string                  `json:"type"`
	Fields    []*schema.Field         `json:"fields"`
	Indexes   []schema.Index          `json:"indexes"`
	Rules     schema.Rules            `json:"rules"`
	OAuth2    []schema.OAuth2Provider `json:"oauth2"`
	Cache     *schema.Cache           `json:"cache"`
	RateLimit string                  `json:"rate_limit"`
}

func (a *API) createCollection(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return err
	}
	var in collectionInput
	if err := httpx.DecodeStrict(body, &in); err != nil {
		return err
	}
	c, err := a.recs.CreateCollection(r.Context(), &schema.Collection{
		Name: in.Name, Type: schema.CollectionType(in.Type), Fields: in.Fields, Indexes: in.Indexes, Rules: in.Rules, OAuth2: in.OAuth2, Cache: in.Cache, RateLimit: in.RateLimit,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/collections/"+c.Name)
	httpx.JSON(w, http.StatusCreated, c)
	return nil
}

func (a *API) updateCollection(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return err
	}
	var p records.CollectionPatch
	if err := httpx.DecodeStrict(body, &p); err != nil {
		return err
	}
	c, err := a.recs.UpdateCollection(r.Context(), r.PathValue("name"), &p)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, c)
	return nil
}

func (a *API) deleteCollection(w http.ResponseWriter, r *http.Request) error {
	if err := a.recs.DeleteCollection(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// view holds the fields and expand parameters of a read.
type view struct {
	fields map[string]bool
	expand []string
}

func parseView(c *schema.Collection, q map[string][]string) (view, error) {
	var v view
	if s := strings.TrimSpace(first(q["fields"])); s != "" {
		v.fields = map[string]bool{schema.FieldID: true}
		for _, name := range strings.Split(s, ",") {
			name = strings.TrimSpace(name)
			known := name == schema.FieldID || name == schema.FieldCreated || name == schema.FieldUpdated || name == "expand" ||
				c.Field(name) != nil || (c.Type == schema.Document && schema.ValidName(name))
			if !known {
				return v, &apperr.Error{Kind: apperr.Invalid, Msg: "invalid fields: " + strconv.Quote(name) + " is not a field of " + c.Name,
					Fields: []schema.FieldError{{Field: "fields", Code: "unknown_field", Message: strconv.Quote(name) + " is not a field"}}}
			}
			v.fields[name] = true
		}
	}
	if s := strings.TrimSpace(first(q["expand"])); s != "" {
		for _, name := range strings.Split(s, ",") {
			v.expand = append(v.expand, strings.TrimSpace(name))
		}
		if v.fields != nil {
			v.fields["expand"] = true
		}
	}
	return v, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// render writes records as JSON objects, with their expanded relations.
// render appends records as JSON objects, separated by commas, with their
// expanded relations, to buf.
func (a *API) render(r *http.Request, c *schema.Collection, recs []*schema.Record, v view, buf []byte) ([]byte, error) {
	var expanded []map[string]any
	if len(v.expand) > 0 {
		var err error
		if expanded, err = a.recs.Expand(r.Context(), c, recs, v.expand); err != nil {
			return nil, err
		}
	}
	for i, rec := range recs {
		var extra []schema.KV
		if expanded != nil {
			extra = []schema.KV{{Key: "expand", Value: expanded[i]}}
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = rec.AppendJSON(buf, v.fields, extra...); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

var listParams = map[string]bool{"filter": true, "sort": true, "limit": true, "cursor": true, "total": true, "fields": true, "expand": true}

func (a *API) listRecords(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	c, err := a.recs.Collection(r.Context(), name)
	if err != nil {
		return err
	}
	return a.list(w, r, c, c.Rules.List, func(p records.ListParams) (*records.Page, error) { return a.recs.List(r.Context(), name, p) })
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	ctx := records.WithCaller(r.Context(), records.System) // superuser() let only superusers in
	return a.list(w, r, audit.Collection, nil, func(p records.ListParams) (*records.Page, error) { return a.recs.Audit(ctx, p) })
}

// list answers a list request: it reads the query parameters, runs list
// and writes the page. rule is the list rule, for the cache headers.
func (a *API) list(w http.ResponseWriter, r *http.Request, c *schema.Collection, rule *string, list func(records.ListParams) (*records.Page, error)) error {
	q := r.URL.Query()
	for k := range q {
		if !listParams[k] {
			return apperr.New(apperr.Invalid, "unknown query parameter %q (known: filter, sort, limit, cursor, total, fields, expand)", k)
		}
	}
	p := records.ListParams{Filter: q.Get("filter"), Sort: q.Get("sort"), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return apperr.New(apperr.Invalid, "limit must be a whole number from 1 to %d, not %q", records.MaxLimit, s)
		}
		p.Limit = n
	}
	if s := q.Get("total"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return apperr.New(apperr.Invalid, "total must be true or false, not %q", s)
		}
		p.Total = b
	}
	v, err := parseView(c, q)
	if err != nil {
		return err
	}
	res, err := list(p)
	if err != nil {
		return err
	}
	// The page is written by hand around the records' own JSON: encoding
	// it would validate and copy every record again.
	pb := pageBuffers.Get().(*[]byte)
	buf := append((*pb)[:0], `{"items":[`...)
	if buf, err = a.render(r, c, res.Items, v, buf); err != nil {
		return err
	}
	buf = append(buf, `],"next_cursor":`...)
	if res.NextCursor != "" {
		buf = strconv.AppendQuote(buf, res.NextCursor) // base64url and ".": nothing to escape
	} else {
		buf = append(buf, "null"...)
	}
	if res.Total != nil {
		buf = append(buf, `,"total":`...)
		buf = strconv.AppendInt(buf, *res.Total, 10)
	}
	buf = append(buf, "}\n"...)
	etag := records.ETagOf(buf)
	setCacheHeaders(w, c, rule, len(v.expand) > 0)
	w.Header().Set("ETag", etag)
	if match(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
	} else {
		httpx.RawJSON(w, http.StatusOK, buf)
	}
	if cap(buf) <= maxPooledPage {
		*pb = buf
		pageBuffers.Put(pb)
	}
	return nil
}

// pageBuffers holds the buffers list pages are written into, each grown
// to the pages it served: a page of 50 records is tens of kilobytes, which
// a fresh buffer reached by doubling, allocating and copying each time.
// A buffer goes back once the page is written to the connection.
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledPage is the largest buffer kept for another page: a rare huge
// page should not pin its memory.
const maxPooledPage = 1 << 20

func (a *API) getRecord(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	c, err := a.recs.Collection(r.Context(), name)
	if err != nil {
		return err
	}
	var v view
	if r.URL.RawQuery != "" {
		if v, err = parseView(c, r.URL.Query()); err != nil {
			return err
		}
	}
	rec, full, err := a.recs.GetJSON(r.Context(), name, r.PathValue("id"))
	if err != nil {
		return err
	}
	if full == nil {
		if full, err = rec.AppendJSON(nil, nil); err != nil {
			return err
		}
	}
	etag := records.ETagOf(full)
	w.Header().Set("ETag", etag)
	if match(r.Header.Get("If-None-Match"), etag) {
		setCacheHeaders(w, c, c.Rules.View, len(v.expand) > 0)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	out := full
	if v.fields != nil || len(v.expand) > 0 {
		if out, err = a.render(r, c, []*schema.Record{rec}, v, nil); err != nil {
			return err
		}
	}
	setCacheHeaders(w, c, c.Rules.View, len(v.expand) > 0)
	httpx.RawJSON(w, http.StatusOK, out)
	return nil
}

// match reports whether an If-None-Match header names etag.
func match(header, etag string) bool {
	for header != "" {
		var t string
		t, header, _ = strings.Cut(header, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (a *API) createRecord(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := a.recs.Collection(r.Context(), name); err != nil {
		return err
	}
	body, obj, err := a.readObject(w, r)
	if err != nil {
		return err
	}
	o := records.WriteOptions{}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if !validKey(key) {
			return apperr.New(apperr.Invalid, "the Idempotency-Key header must be 1 to 255 printable ASCII characters")
		}
		sum := sha256.Sum256(body)
		o.IdempotencyKey, o.BodyHash = key, hex.EncodeToString(sum[:])
		o.Scope = idempotencyScope(r)
	}
	res, err := a.recs.Create(r.Context(), name, obj, o)
	if err != nil {
		return err
	}
	if res.Replay != nil {
		w.Header().Set("Idempotent-Replayed", "true")
		httpx.RawJSON(w, http.StatusCreated, res.Replay)
		return nil
	}
	out := res.JSON
	if out == nil {
		if out, err = res.Record.MarshalJSON(); err != nil {
			return err
		}
	}
	w.Header().Set("Location", "/api/v1/collections/"+name+"/records/"+res.Record.ID)
	w.Header().Set("ETag", records.ETagOf(out))
	httpx.RawJSON(w, http.StatusCreated, out)
	return nil
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (a *API) patchRecord(w http.ResponseWriter, r *http.Request) error { return a.update(w, r, false) }
func (a *API) putRecord(w http.ResponseWriter, r *http.Request) error   { return a.update(w, r, true) }

func (a *API) update(w http.ResponseWriter, r *http.Request, replace bool) error {
	name := r.PathValue("name")
	if _, err := a.recs.Collection(r.Context(), name); err != nil {
		return err
	}
	_, obj, err := a.readObject(w, r)
	if err != nil {
		return err
	}
	rec, err := a.recs.Update(r.Context(), name, r.PathValue("id"), obj, replace, records.WriteOptions{IfMatch: r.Header.Get("If-Match")})
	if err != nil {
		return err
	}
	out, err := rec.MarshalJSON()
	if err != nil {
		return err
	}
	w.Header().Set("ETag", records.ETagOf(out))
	httpx.RawJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteRecord(w http.ResponseWriter, r *http.Request) error {
	err := a.recs.Delete(r.Context(), r.PathValue("name"), r.PathValue("id"), records.WriteOptions{IfMatch: r.Header.Get("If-Match")})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// The values of Vary and of Cache-Control on private reads, shared by
// every answer (see the header values in httpx).
var (
	hdrVaryCaller = []string{"Authorization, X-API-Key"}
	hdrPrivate    = []string{"private, no-cache"}
)

// setCacheHeaders sets Cache-Control and Vary on a successful read of c
// whose access rule is rule; expanded says whether the answer includes
// expanded relations.
//
// A read that anyone may make (rule "") of a collection with
// cache.http.max_age, without expanded relations (which the related
// collections' view rules filter for each caller), is the same for every
// caller: shared caches (CDNs)
// may keep it, "public, max-age=N" with stale-while-revalidate when set.
// Any other read depends on who asks, or is not meant to be kept:
// "private, no-cache" lets only the caller's own browser store it and
// makes it revalidate on every use, which the ETag turns into a 304
// without a body. no-store is not used: it would forbid that
// revalidation, and a private answer holds nothing the caller may not
// see. Vary names the headers that carry the caller (Authorization,
// X-API-Key) on every read, so that no cache hands one caller's answer
// to another. The API compresses nothing, so Accept-Encoding is left to
// whatever compresses in front of it.
func setCacheHeaders(w http.ResponseWriter, c *schema.Collection, rule *string, expanded bool) {
	h := w.Header()
	h["Vary"] = hdrVaryCaller
	maxAge, swr, ok := c.HTTPCacheAges()
	if !ok || expanded || rule == nil || strings.TrimSpace(*rule) != "" {
		h["Cache-Control"] = hdrPrivate
		return
	}
	v := "public, max-age=" + strconv.FormatInt(int64(maxAge.Seconds()), 10)
	if swr > 0 {
		v += ", stale-while-revalidate=" + strconv.FormatInt(int64(swr.Seconds()), 10)
	}
	h.Set("Cache-Control", v)
}

// incrementRecord adds to counters of a record of a write-back
// collection: POST .../records/{id}/increment with {"views": 1}.
func (a *API) incrementRecord(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := a.recs.Collection(r.Context(), name); err != nil {
		return err
	}
	_, obj, err := a.readObject(w, r)
	if err != nil {
		return err
	}
	rec, err := a.recs.Increment(r.Context(), name, r.PathValue("id"), obj)
	if err != nil {
		return err
	}
	out, err := rec.MarshalJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.RawJSON(w, http.StatusOK, out)
	return nil
}

// idempotencyScope separates the Idempotency-Keys of callers, so that one
// caller's key never replays another's answer: a signed-in caller by its
// id, an anonymous one by its address.
func idempotencyScope(r *http.Request) string {
	if p := auth.PrincipalFrom(r.Context()); p != nil {
		return p.ID
	}
	return "anonymous:" + auth.ClientFrom(r.Context()).IP
}
