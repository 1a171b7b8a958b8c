// Command floor is the no-framework floor of the benchmark: net/http and
// SQLite with the pragmas Strata uses, prepared statements, four readers
// and one writer goroutine that commits concurrent writes in groups. It
// knows one schema and one query, checks one static bearer token (with
// -public, only when a request on posts sends one), and validates
// almost nothing: a records service cannot beat it by much.
package main

import (
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const schema = `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL,
	name TEXT NOT NULL, email TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL,
	title TEXT NOT NULL, views REAL NOT NULL DEFAULT 0, published INTEGER NOT NULL DEFAULT 0,
	author TEXT REFERENCES users(id), body TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS posts_published_views ON posts (published, views);`

const postCols = `id, created, updated, title, views, published, author, body`

type user struct {
	ID      string `json:"id"`
	Created string `json:"created"`
	Updated string `json:"updated"`
	Name    string `json:"name"`
	Email   string `json:"email"`
}

type post struct {
	ID        string  `json:"id"`
	Created   string  `json:"created"`
	Updated   string  `json:"updated"`
	Title     string  `json:"title"`
	Views     float64 `json:"views"`
	Published bool    `json:"published"`
	Author    string  `json:"author"`
	Body      string  `json:"body"`
	Expand    *expand `json:"expand,omitempty"`
}

type expand struct {
	Author *user `json:"author,omitempty"`
}

// write is one statement for the writer goroutine; done gets its result.
type write struct {
	stmt *sql.Stmt
	args []any
	done chan result
}

type result struct {
	row *post
	n   int64
	err error
}

type server struct {
	token                    string
	get, list, listExpand    *sql.Stmt // on the readers
	insUser, insPost, update *sql.Stmt // on the writer
	del                      *sql.Stmt
	writes                   chan *write
	wdb                      *sql.DB
}

func main() {
	addr := flag.String("http", "127.0.0.1:8093", "listen address")
	dir := flag.String("dir", ".", "data directory")
	token := flag.String("token", "", "bearer token required under /api/ (empty: none)")
	public := flag.Bool("public", false, "serve requests on posts (and their authors, expanded) to callers with no Authorization header")
	flag.Parse()

	dsn := func(extra string) string {
		q := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"}}
		return "file:" + filepath.Join(*dir, "floor.db") + "?" + q.Encode() + extra
	}
	wdb := must(sql.Open("sqlite", dsn("&_txlock=immediate")))
	wdb.SetMaxOpenConns(1)
	must(wdb.Exec(schema))
	rdb := must(sql.Open("sqlite", dsn("&_pragma=query_only(1)")))
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)

	s := &server{token: *token, writes: make(chan *write, 128), wdb: wdb,
		get:  must(rdb.Prepare(`SELECT ` + postCols + ` FROM posts WHERE id = ?`)),
		list: must(rdb.Prepare(`SELECT ` + postCols + ` FROM posts WHERE published = 1 AND views >= ? ORDER BY views DESC LIMIT ?`)),
		listExpand: must(rdb.Prepare(`SELECT p.id, p.created, p.updated, p.title, p.views, p.published, p.author, p.body,
			u.id, u.created, u.updated, u.name, u.email FROM posts p LEFT JOIN users u ON u.id = p.author
			WHERE p.published = 1 AND p.views >= ? ORDER BY p.views DESC LIMIT ?`)),
		insUser: must(wdb.Prepare(`INSERT INTO users (id, created, updated, name, email) VALUES (?, ?, ?, ?, ?)`)),
		insPost: must(wdb.Prepare(`INSERT INTO posts (id, created, updated, title, views, published, author, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)),
		update:  must(wdb.Prepare(`UPDATE posts SET views = ?, updated = ? WHERE id = ? RETURNING ` + postCols)),
		del:     must(wdb.Prepare(`DELETE FROM posts WHERE id = ?`)),
	}
	go s.writer()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("POST /api/users", s.auth(s.createUser))
	posts := s.auth
	if *public {
		posts = s.public
	}
	mux.HandleFunc("GET /api/posts", posts(s.listPosts))
	mux.HandleFunc("POST /api/posts", posts(s.createPost))
	mux.HandleFunc("GET /api/posts/{id}", posts(s.getPost))
	mux.HandleFunc("PATCH /api/posts/{id}", posts(s.updatePost))
	mux.HandleFunc("DELETE /api/posts/{id}", posts(s.deletePost))
	log.Fatal(http.ListenAndServe(*addr, mux))
}

// writer commits writes in groups: it drains the queue into one
// transaction, commits once, and answers each write after the commit. A
// statement that fails is undone alone; the others keep their changes.
func (s *server) writer() {
	for first := range s.writes {
		group := []*write{first}
	drain:
		for len(group) < 128 {
			select {
			case w := <-s.writes:
				group = append(group, w)
			default:
				break drain
			}
		}
		res := make([]result, len(group))
		tx, err := s.wdb.Begin()
		for i, w := range group {
			if err != nil {
				res[i].err = err
				continue
			}
			st := tx.Stmt(w.stmt)
			if w.stmt == s.update {
				p, err := scanPost(st.QueryRow(w.args...), false)
				res[i] = result{row: p, err: err}
				continue
			}
			r, err := st.Exec(w.args...)
			if err == nil {
				res[i].n, _ = r.RowsAffected()
			}
			res[i].err = err
		}
		if err == nil {
			err = tx.Commit()
		}
		for i, w := range group {
			if err != nil {
				res[i] = result{err: err}
			}
			w.done <- res[i]
		}
	}
}

func (s *server) exec(stmt *sql.Stmt, args ...any) result {
	w := &write{stmt: stmt, args: args, done: make(chan result, 1)}
	s.writes <- w
	return <-w.done
}

func (s *server) auth(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + s.token)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// public serves a request with no Authorization header as an anonymous
// one, and checks the token of any other.
func (s *server) public(h http.HandlerFunc) http.HandlerFunc {
	checked := s.auth(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			checked(w, r)
			return
		}
		h(w, r)
	}
}

func (s *server) getPost(w http.ResponseWriter, r *http.Request) {
	p, err := scanPost(s.get.QueryRowContext(r.Context(), r.PathValue("id")), false)
	reply(w, http.StatusOK, p, err)
}

func (s *server) listPosts(w http.ResponseWriter, r *http.Request) {
	minViews, _ := strconv.ParseFloat(r.URL.Query().Get("min_views"), 64)
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 || limit > 500 {
		limit = 50
	}
	withAuthor := r.URL.Query().Get("expand") == "author"
	stmt := s.list
	if withAuthor {
		stmt = s.listExpand
	}
	rows, err := stmt.QueryContext(r.Context(), minViews, limit)
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	defer rows.Close()
	page := struct {
		Items []*post `json:"items"`
	}{Items: []*post{}}
	for rows.Next() {
		p, err := scanPost(rows, withAuthor)
		if err != nil {
			reply(w, 0, nil, err)
			return
		}
		page.Items = append(page.Items, p)
	}
	reply(w, http.StatusOK, page, rows.Err())
}

func (s *server) createPost(w http.ResponseWriter, r *http.Request) {
	var p post
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Title == "" {
		http.Error(w, `{"error":"invalid post"}`, http.StatusBadRequest)
		return
	}
	p.ID, p.Created = newID(), now()
	p.Updated = p.Created
	var author any
	if p.Author != "" {
		author = p.Author
	}
	res := s.exec(s.insPost, p.ID, p.Created, p.Updated, p.Title, p.Views, p.Published, author, p.Body)
	reply(w, http.StatusCreated, &p, res.err)
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	var u user
	if err := json.NewDecoder(r.Body).Decode(&u); err != nil || u.Name == "" {
		http.Error(w, `{"error":"invalid user"}`, http.StatusBadRequest)
		return
	}
	u.ID, u.Created = newID(), now()
	u.Updated = u.Created
	res := s.exec(s.insUser, u.ID, u.Created, u.Updated, u.Name, u.Email)
	reply(w, http.StatusCreated, &u, res.err)
}

func (s *server) updatePost(w http.ResponseWriter, r *http.Request) {
	var in struct{ Views *float64 }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Views == nil {
		http.Error(w, `{"error":"only views can change"}`, http.StatusBadRequest)
		return
	}
	res := s.exec(s.update, *in.Views, now(), r.PathValue("id"))
	reply(w, http.StatusOK, res.row, res.err)
}

func (s *server) deletePost(w http.ResponseWriter, r *http.Request) {
	res := s.exec(s.del, r.PathValue("id"))
	if res.err == nil && res.n == 0 {
		res.err = sql.ErrNoRows
	}
	reply(w, http.StatusNoContent, nil, res.err)
}

// scanPost reads a post, and its author when withAuthor is set.
func scanPost(row interface{ Scan(...any) error }, withAuthor bool) (*post, error) {
	var p post
	var author sql.NullString
	dest := []any{&p.ID, &p.Created, &p.Updated, &p.Title, &p.Views, &p.Published, &author, &p.Body}
	var u struct{ id, created, updated, name, email sql.NullString }
	if withAuthor {
		dest = append(dest, &u.id, &u.created, &u.updated, &u.name, &u.email)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	p.Author = author.String
	if withAuthor {
		p.Expand = &expand{}
		if u.id.Valid {
			p.Expand.Author = &user{ID: u.id.String, Created: u.created.String, Updated: u.updated.String, Name: u.name.String, Email: u.email.String}
		}
	}
	return &p, nil
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err == sql.ErrNoRows:
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	case err != nil && strings.Contains(err.Error(), "constraint failed"):
		http.Error(w, `{"error":"constraint failed"}`, http.StatusBadRequest)
	case err != nil:
		log.Print(err)
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
	case v == nil:
		w.WriteHeader(status)
	default:
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}
}

func newID() string { return rand.Text()[:16] }

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
