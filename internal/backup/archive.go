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
	"fmt"
	"hash"
	"io"
	"os"
)

// An archive is a gzip-compressed tar file: manifest.json first, then every
// file the manifest lists, in its order, as regular files and nothing else.
// The manifest gives each file's size and SHA-256, so a reader checks every
// byte before it trusts any.

// entry is a file to put into an archive: bytes in memory or a file on disk.
type entry struct {
	File
	data []byte // when in memory
	disk string // when on disk
}

// memEntry returns an entry of bytes held in memory.
func memEntry(name string, data []byte) entry {
	sum := sha256.Sum256(data)
	return entry{File: File{Path: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, data: data}
}

// diskEntry returns an entry of the file at path, reading it once for its
// checksum.
func diskEntry(ctx context.Context, name, path string) (entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return entry{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return entry{}, fmt.Errorf("read %s: %w", path, err)
	}
	return entry{File: File{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, disk: path}, nil
}

// writeArchive writes m and its entries to w as a gzip-compressed tar. m's
// file list is set from entries. p is told the bytes of file data written.
func writeArchive(ctx context.Context, w io.Writer, m *Manifest, entries []entry, p Progress) error {
	m.Files = make([]File, len(entries))
	for i, e := range entries {
		m.Files[i] = e.File
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	header := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: m.Created})
	}
	if err := header(manifestName, int64(len(manifest))); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if _, err := tw.Write(manifest); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	p.Start("backup: write", m.DataSize())
	defer p.Done()
	var done int64
	for _, e := range entries {
		if err := header(e.Path, e.Size); err != nil {
			return fmt.Errorf("write %s: %w", e.Path, err)
		}
		if err := copyEntry(ctx, tw, e, done, p); err != nil {
			return err
		}
		done += e.Size
		p.Set(done)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

// copyEntry writes e's bytes, checking they still match the size and
// checksum recorded for it.
func copyEntry(ctx context.Context, w io.Writer, e entry, base int64, p Progress) error {
	var r io.Reader = bytes.NewReader(e.data)
	if e.disk != "" {
		f, err := os.Open(e.disk)
		if err != nil {
			return fmt.Errorf("open %s: %w", e.disk, err)
		}
		defer f.Close()
		r = f
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), &countingReader{r: ctxReader{ctx, io.LimitReader(r, e.Size+1)}, base: base, p: p})
	if err != nil {
		return fmt.Errorf("write %s: %w", e.Path, err)
	}
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
		return fmt.Errorf("write %s: the file changed while the backup was written", e.Path)
	}
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// ErrCorrupt marks an archive that is damaged, truncated or not a strata
// backup. Errors returned by ArchiveReader wrap it; test with errors.Is.
var ErrCorrupt = errors.New("corrupt backup archive")

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// ArchiveReader reads a backup archive, checking it against its manifest
// as it goes. It is a parser of untrusted input: every name, type, size and
// checksum is checked before the caller sees the bytes.
type ArchiveReader struct {
	ctx      context.Context
	zr       *gzip.Reader
	tr       *tar.Reader
	manifest *Manifest
	next     int              // index into manifest.Files of the next file
	body     *verifyingReader // the file being read, if any
	done     bool
}

// OpenArchive reads the start of an archive from r: its manifest, which it
// checks. Read the files with Next.
func OpenArchive(ctx context.Context, r io.Reader) (*ArchiveReader, error) {
	zr, err := gzip.NewReader(ctxReader{ctx, r})
	if err == io.EOF {
		return nil, corruptf("the archive is empty")
	}
	if err != nil {
		return nil, readError(err, "", "not a gzip file")
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		return nil, readError(err, manifestName, "no manifest")
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		return nil, corruptf("the first file is %q, not %s: not a strata backup", hdr.Name, manifestName)
	}
	if hdr.Size > maxManifestSize {
		return nil, corruptf("%s is %d bytes, more than the %d allowed", manifestName, hdr.Size, maxManifestSize)
	}
	raw, err := io.ReadAll(tr)
	if err != nil {
		return nil, readError(err, manifestName, "")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, corruptf("%s: %v", manifestName, err)
	}
	if err := m.validate(); err != nil {
		return nil, corruptf("%s: %v", manifestName, err)
	}
	return &ArchiveReader{ctx: ctx, zr: zr, tr: tr, manifest: &m}, nil
}

// Manifest returns the archive's manifest.
func (a *ArchiveReader) Manifest() *Manifest { return a.manifest }

// Next finishes the current file, checking its checksum, and returns the
// next one with a reader of its bytes. The reader fails rather than end
// when the bytes do not match the manifest. After the last file, Next
// checks that nothing follows and that the compressed stream is intact,
// and returns io.EOF.
func (a *ArchiveReader) Next() (File, io.Reader, error) {
	if a.body != nil {
		if _, err := io.Copy(io.Discard, a.body); err != nil {
			return File{}, nil, err
		}
		a.body = nil
	}
	if a.done {
		return File{}, nil, io.EOF
	}
	if a.next == len(a.manifest.Files) {
		if err := a.finish(); err != nil {
			return File{}, nil, err
		}
		a.done = true
		return File{}, nil, io.EOF
	}
	want := a.manifest.Files[a.next]
	hdr, err := a.tr.Next()
	if errors.Is(err, io.EOF) {
		return File{}, nil, corruptf("the archive ends before %s: it is truncated", want.Path)
	}
	if err != nil {
		return File{}, nil, readError(err, want.Path, "")
	}
	if hdr.Name != want.Path {
		return File{}, nil, corruptf("found %q where the manifest lists %s", hdr.Name, want.Path)
	}
	if hdr.Typeflag != tar.TypeReg {
		return File{}, nil, corruptf("%s is not a regular file (tar type %q)", hdr.Name, hdr.Typeflag)
	}
	if hdr.Size != want.Size {
		return File{}, nil, corruptf("%s is %d bytes, the manifest says %d", hdr.Name, hdr.Size, want.Size)
	}
	a.next++
	a.body = &verifyingReader{r: ctxReader{a.ctx, a.tr}, file: want, h: sha256.New()}
	return want, a.body, nil
}

// finish checks the end of the archive: no further file, and a gzip
// stream that ends with a valid checksum.
func (a *ArchiveReader) finish() error {
	hdr, err := a.tr.Next()
	if err == nil {
		return corruptf("unexpected file %q after the last one the manifest lists", hdr.Name)
	}
	if !errors.Is(err, io.EOF) {
		return readError(err, "", "")
	}
	if _, err := io.Copy(io.Discard, a.zr); err != nil {
		return readError(err, "", "")
	}
	return nil
}

// readError describes a failure to read the archive, naming the file
// being read.
func readError(err error, file, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err // the archive file itself cannot be read
	}
	where := ""
	if file != "" {
		where = " in " + file
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return corruptf("the archive ends early%s: it is truncated", where)
	case what != "":
		return corruptf("%s%s: %v", what, where, err)
	}
	return corruptf("read%s: %v", where, err)
}

// verifyingReader reads one file of an archive and fails at its end when
// the bytes do not have the manifest's checksum.
type verifyingReader struct {
	r    io.Reader
	file File
	h    hash.Hash
	n    int64
	err  error
}

func (v *verifyingReader) Read(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if v.n != v.file.Size {
			v.err = corruptf("the archive ends early in %s: it is truncated", v.file.Path)
		} else if hex.EncodeToString(v.h.Sum(nil)) != v.file.SHA256 {
			v.err = corruptf("%s does not match its SHA-256 in the manifest", v.file.Path)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	}
	if err != nil {
		v.err = readError(err, v.file.Path, "")
	}
	return n, v.err
}
