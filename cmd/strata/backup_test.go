package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/backup"
)

// newDataDir makes a data directory with a superuser and one applied
// migration, through the CLI.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	base := []string{"--dir", dir, "--config", ""}
	if _, _, err := runCLI(t, "a long enough password\n", append([]string{"superuser", "create", "admin@example.com", "--password-stdin"}, base...)...); err != nil {
		t.Fatalf("superuser create: %v", err)
	}
	migs := filepath.Join(dir, "migrations")
	os.MkdirAll(migs, 0o755)
	m := `{"id":"20260101000000000000_create_notes","up":[{"op":"create","collection":{"id":"c1","name":"notes","type":"document"}}],"down":[{"op":"delete","name":"notes"}]}`
	if err := os.WriteFile(filepath.Join(migs, "20260101000000000000_create_notes.json"), []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", append([]string{"migrate", "up"}, base...)...); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	return dir
}

func TestBackupRestoreCLI(t *testing.T) {
	src := newDataDir(t)
	archive := filepath.Join(t.TempDir(), "strata.tar.gz")
	out, errOut, err := runCLI(t, "", "backup", archive, "--dir", src, "--config", "")
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "backup: wrote "+archive) || !strings.Contains(out, " in ") {
		t.Errorf("backup summary: %q", out)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a progress bar was drawn on a non-terminal: %q", errOut)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(archive), ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left beside the archive: %v", leftovers)
	}

	dst := filepath.Join(t.TempDir(), "restored")
	out, errOut, err = runCLI(t, "", "restore", archive, "--dir", dst, "--config", "")
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "restore: restored "+archive) || !strings.Contains(out, "sqlite backup") {
		t.Errorf("restore summary: %q", out)
	}
	for _, name := range []string{"secret", "keys", "migrations/20260101000000000000_create_notes.json"} {
		if !sameTree(t, filepath.Join(src, name), filepath.Join(dst, name)) {
			t.Errorf("%s differs after restore", name)
		}
	}
	out, _, err = runCLI(t, "", "migrate", "status", "--dir", dst, "--config", "")
	if err != nil || !strings.Contains(out, "20260101000000000000_create_notes  applied") {
		t.Errorf("migrate status on the restored directory: %v\n%s", err, out)
	}
	// The superuser came back with its password.
	out, _, err = runCLI(t, "another long password\n", "superuser", "create", "admin@example.com", "--password-stdin", "--dir", dst, "--config", "")
	if err != nil || !strings.Contains(out, "admin@example.com") {
		t.Errorf("superuser on the restored directory: %v %s", err, out)
	}
}

// sameTree reports whether two files, or two directories' files, hold the
// same bytes.
func sameTree(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if !fa.IsDir() {
		x, err1 := os.ReadFile(a)
		y, err2 := os.ReadFile(b)
		return err1 == nil && err2 == nil && bytes.Equal(x, y)
	}
	ea, _ := os.ReadDir(a)
	eb, _ := os.ReadDir(b)
	if len(ea) == 0 || len(ea) != len(eb) {
		return false
	}
	for _, e := range ea {
		if !sameTree(t, filepath.Join(a, e.Name()), filepath.Join(b, e.Name())) {
			return false
		}
	}
	return true
}

func TestBackupRefusesExistingPath(t *testing.T) {
	src := newDataDir(t)
	archive := filepath.Join(t.TempDir(), "strata.tar.gz")
	if err := os.WriteFile(archive, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "", "backup", archive, "--dir", src, "--config", "")
	if err == nil || !strings.Contains(err.Error(), archive) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("backup over an existing file: err = %v", err)
	}
	if b, _ := os.ReadFile(archive); string(b) != "precious" {
		t.Errorf("the existing file was changed: %q", b)
	}
	if _, _, err := runCLI(t, "", "backup", archive, "--force", "--dir", src, "--config", ""); err != nil {
		t.Fatalf("backup --force: %v", err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := backup.Verify(context.Background(), f, backup.Discard, 0); err != nil {
		t.Errorf("the archive written with --force does not verify: %v", err)
	}
}

func TestRestoreRefusesNonEmptyDir(t *testing.T) {
	src := newDataDir(t)
	archive := filepath.Join(t.TempDir(), "strata.tar.gz")
	if _, _, err := runCLI(t, "", "backup", archive, "--dir", src, "--config", ""); err != nil {
		t.Fatal(err)
	}
	// Restoring over the source itself, and into a directory holding one
	// stray file, are both refused, naming what is there.
	_, _, err := runCLI(t, "", "restore", archive, "--dir", src, "--config", "")
	if err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "data.db") {
		t.Errorf("restore over the source: err = %v", err)
	}
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "", "restore", archive, "--dir", dst, "--config", "")
	if err == nil || !strings.Contains(err.Error(), dst) || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("restore into a non-empty directory: err = %v", err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 1 {
		t.Errorf("the refused restore wrote into the directory: %v", ents)
	}
}

func TestRestoreRefusesCorruptArchive(t *testing.T) {
	src := newDataDir(t)
	archive := filepath.Join(t.TempDir(), "strata.tar.gz")
	if _, _, err := runCLI(t, "", "backup", archive, "--dir", src, "--config", ""); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)*3/4] ^= 0x55
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)/2],
		"corrupt":   flipped,
		"empty":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), name+".tar.gz")
			if err := os.WriteFile(bad, data, 0o600); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			dst := filepath.Join(parent, "restored")
			_, _, err := runCLI(t, "", "restore", bad, "--dir", dst, "--config", "")
			if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), bad) {
				t.Errorf("restore of a %s archive: err = %v", name, err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("left behind after a failed restore: %v", ents)
			}
		})
	}
}

func TestBackupToStdout(t *testing.T) {
	src := newDataDir(t)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"backup", "-", "--dir", src, "--config", ""}, strings.NewReader(""), &out, &errOut, []string{})
	if err != nil {
		t.Fatalf("backup -: %v", err)
	}
	m, err := backup.Verify(context.Background(), &out, backup.Discard, 0)
	if err != nil {
		t.Fatalf("the archive on stdout does not verify: %v", err)
	}
	if m.Engine != "sqlite" || len(m.Files) != 4 {
		t.Errorf("manifest: %+v", m)
	}
	if !strings.Contains(errOut.String(), "backup: wrote standard output") {
		t.Errorf("summary on stderr: %q", errOut.String())
	}
}

func TestBackupUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backup"}, "backup needs one PATH"},
		{[]string{"backup", "a", "b"}, "backup needs one PATH"},
		{[]string{"restore"}, "restore needs one PATH"},
	} {
		_, _, err := runCLI(t, "", c.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
	for _, cmd := range []string{"backup", "restore"} {
		_, errOut, err := runCLI(t, "", cmd, "--help")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "strata "+cmd+" PATH") || !strings.Contains(errOut, "-dir") {
			t.Errorf("%s --help: %v\n%s", cmd, err, errOut)
		}
	}
	// A backup of a directory that is not a data directory says so.
	_, _, err := runCLI(t, "", "backup", filepath.Join(t.TempDir(), "x.tar.gz"), "--dir", t.TempDir(), "--config", "")
	if err == nil || !strings.Contains(err.Error(), "no SQLite database at") {
		t.Errorf("backup of an empty directory: err = %v", err)
	}
}
