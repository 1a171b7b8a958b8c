package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if they leave goroutines running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tarFile is one member of a hand-made archive.
type tarFile struct {
	name     string
	typeflag byte
	body     []byte
	linkname string
}

// rawArchive builds a gzip-compressed tar of files as given, valid or not.
func rawArchive(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		typ := f.typeflag
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: f.name, Typeflag: typ, Mode: 0o600, Linkname: f.linkname}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// manifestFor returns a manifest listing files with their true sums.
func manifestFor(files ...tarFile) []byte {
	m := Manifest{Format: FormatVersion, StrataVersion: "test", Engine: "sqlite", Created: time.Unix(1700000000, 0).UTC()}
	for _, f := range files {
		m.Files = append(m.Files, File{Path: f.name, Size: int64(len(f.body)), SHA256: sum(f.body)})
	}
	b, _ := json.Marshal(m)
	return b
}

// validFiles are the members of a small valid archive.
func validFiles() []tarFile {
	return []tarFile{
		{name: "data.db", body: []byte("SQLite format 3\x00 pretend")},
		{name: "secret", body: []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n")},
		{name: "keys/00000000000000000001.pem", body: []byte("-----BEGIN PRIVATE KEY-----\n")},
		{name: "migrations/20260101000000000000_create_notes.json", body: []byte(`{"id":"x"}`)},
	}
}

// validArchive is an archive with a manifest and files that agree.
func validArchive(t testing.TB) []byte {
	files := validFiles()
	return rawArchive(t, append([]tarFile{{name: manifestName, body: manifestFor(files...)}}, files...)...)
}

// testLayout puts everything under root/data.
func testLayout(root string) Layout {
	dir := filepath.Join(root, "data")
	return Layout{Dir: dir, DBPath: filepath.Join(dir, "data.db"), MigrationsDir: filepath.Join(dir, "migrations")}
}

// listFiles returns every file and directory under root, relative.
func listFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out
}

func TestExtractValid(t *testing.T) {
	root := t.TempDir()
	m, err := Extract(context.Background(), bytes.NewReader(validArchive(t)), testLayout(root))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 4 || m.Engine != "sqlite" {
		t.Errorf("manifest: %+v", m)
	}
	for _, f := range validFiles() {
		got, err := os.ReadFile(testLayout(root).target(f.name))
		if err != nil || !bytes.Equal(got, f.body) {
			t.Errorf("%s: %q, %v; want %q", f.name, got, err, f.body)
		}
	}
	want := []string{"data", "data/data.db", "data/keys", "data/keys/00000000000000000001.pem",
		"data/migrations", "data/migrations/20260101000000000000_create_notes.json", "data/secret"}
	if got := listFiles(t, root); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files:\n got %v\nwant %v", got, want)
	}
}

// TestExtractRejects feeds archives that must be refused and checks that
// each is, with the expected reason, and that nothing is left behind.
func TestExtractRejects(t *testing.T) {
	files := validFiles()
	withManifest := func(m []byte, rest ...tarFile) []byte {
		return rawArchive(t, append([]tarFile{{name: manifestName, body: m}}, rest...)...)
	}
	evil := tarFile{name: "../evil.pem", body: []byte("x")}
	abs := tarFile{name: "/tmp/evil.pem", body: []byte("x")}
	valid := validArchive(t)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0xff
	wrongSum := bytes.Clone(files[1].body)
	wrongSum[0] ^= 1
	newer := strings.Replace(string(manifestFor(files...)), `"format":1`, `"format":99`, 1)

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "the archive is empty"},
		{"not gzip", []byte("hello, world"), "not a gzip file"},
		{"truncated", valid[:len(valid)*2/3], "truncated"},
		{"truncated in gzip trailer", valid[:len(valid)-4], "truncated"},
		{"corrupt byte", flipped, "corrupt backup archive"},
		{"no manifest first", rawArchive(t, files...), "not manifest.json"},
		{"manifest not json", withManifest([]byte("{"), files...), "manifest.json"},
		{"newer format", withManifest([]byte(newer), files...), "newer than this strata reads"},
		{"parent path in manifest", withManifest(manifestFor(append(files, evil)...), append(files, evil)...), `"../evil.pem" is not a path`},
		{"absolute path in manifest", withManifest(manifestFor(append(files, abs)...), append(files, abs)...), `"/tmp/evil.pem" is not a path`},
		{"dot dot under keys", withManifest(manifestFor(append(files, tarFile{name: "keys/../../x.pem"})...)), "is not a path"},
		{"unlisted name in tar", withManifest(manifestFor(files...), files[0], evil), `found "../evil.pem" where the manifest lists secret`},
		{"symlink", withManifest(manifestFor(files...), files[0], tarFile{name: "secret", typeflag: tar.TypeSymlink, linkname: "/etc/passwd"}), "not a regular file"},
		{"hard link", withManifest(manifestFor(files...), files[0], tarFile{name: "secret", typeflag: tar.TypeLink, linkname: "data.db"}), "not a regular file"},
		{"directory", withManifest(manifestFor(files...), files[0], tarFile{name: "secret", typeflag: tar.TypeDir}), "not a regular file"},
		{"checksum mismatch", withManifest(manifestFor(files...), files[0], tarFile{name: "secret", body: wrongSum}), "secret does not match its SHA-256"},
		{"size mismatch", withManifest(manifestFor(files...), files[0], tarFile{name: "secret", body: []byte("short")}), "secret is 5 bytes"},
		{"missing file", withManifest(manifestFor(files...), files[:2]...), "ends before keys/"},
		{"extra file", withManifest(manifestFor(files...), append(files, tarFile{name: "keys/2.pem", body: []byte("x")})...), "unexpected file"},
		{"no secret", withManifest(manifestFor(files[0]), files[0]), "secret is missing"},
		{"duplicate", withManifest(manifestFor(files[0], files[1], files[1]), files[0], files[1], files[1]), "listed twice"},
		{"postgres dump in sqlite backup", withManifest(manifestFor(tarFile{name: "postgres.dump"}, files[1])), "a sqlite backup holds postgres.dump"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Extract(context.Background(), bytes.NewReader(c.data), testLayout(root))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v does not wrap ErrCorrupt", err)
			}
			if left := listFiles(t, root); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if _, err := Verify(context.Background(), bytes.NewReader(c.data), Discard, 0); err == nil {
				t.Errorf("Verify accepted it")
			}
		})
	}
}

// TestExtractNeverOverwrites: a file already at a target stops the
// restore, is left alone, and nothing else is left behind.
func TestExtractNeverOverwrites(t *testing.T) {
	root := t.TempDir()
	l := testLayout(root)
	if err := os.MkdirAll(l.MigrationsDir, 0o750); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(l.MigrationsDir, "20260101000000000000_create_notes.json")
	if err := os.WriteFile(name, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(validArchive(t)), l); err == nil {
		t.Fatal("extract over an existing file succeeded")
	}
	if b, _ := os.ReadFile(name); string(b) != "mine" {
		t.Errorf("the existing file was changed: %q", b)
	}
	want := "data data/migrations data/migrations/20260101000000000000_create_notes.json"
	if got := strings.Join(listFiles(t, root), " "); got != want {
		t.Errorf("files: %s, want %s", got, want)
	}
}

func TestValidPath(t *testing.T) {
	for p, want := range map[string]bool{
		"data.db": true, "postgres.dump": true, "secret": true, "keys/1.pem": true, "migrations/a_b.json": true,
		"": false, "/secret": false, "../secret": false, "keys/../secret.pem": false, "keys/.pem": false,
		"keys/a/b.pem": false, "keys/a.txt": false, "migrations/.hidden.json": false, "other/a.json": false,
		"keys\\..\\x.pem": false, "keys/": false, "data.db/": false, "./secret": false, "keys/a.pem\x00": false,
	} {
		if got := validPath(p); got != want {
			t.Errorf("validPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// FuzzReadArchive feeds arbitrary bytes to the archive reader: it must
// never panic, never write outside the layout's directories, and leave
// nothing behind when it fails.
func FuzzReadArchive(f *testing.F) {
	valid := validArchive(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	files := validFiles()
	evil := []tarFile{{name: "keys/../../evil.pem", body: []byte("x")}}
	f.Add(rawArchive(f, append([]tarFile{{name: manifestName, body: manifestFor(evil...)}}, evil...)...))
	f.Add(rawArchive(f, tarFile{name: manifestName, body: manifestFor(files...)}, files[0],
		tarFile{name: "secret", typeflag: tar.TypeSymlink, linkname: "../../etc/passwd"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		l := testLayout(root)
		m, err := Extract(context.Background(), bytes.NewReader(data), l)
		got := listFiles(t, root)
		if err != nil {
			if len(got) > 0 {
				t.Fatalf("failed (%v) and left %v", err, got)
			}
			return
		}
		allowed := map[string]bool{"data": true}
		for _, f := range m.Files {
			rel, relErr := filepath.Rel(root, l.target(f.Path))
			if relErr != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("%s restores to %s, outside %s", f.Path, l.target(f.Path), root)
			}
			allowed[filepath.ToSlash(rel)] = true
			allowed[filepath.ToSlash(filepath.Dir(rel))] = true
		}
		for _, p := range got {
			if !allowed[p] {
				t.Fatalf("wrote %s, not listed in the manifest", p)
			}
		}
	})
}
