package bench

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// benchModule is the module path of this directory.
const benchModule = "github.com/strata-dev/strata/bench"

// findRoot returns the repository root: the parent of the nearest
// directory above the working directory whose go.mod is this module's.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			s := bufio.NewScanner(f)
			s.Scan()
			f.Close()
			if strings.TrimSpace(strings.TrimPrefix(s.Text(), "module")) == benchModule {
				return filepath.Dir(dir), nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the bench directory of the Strata repository")
		}
		dir = parent
	}
}

// Every target is built as it ships: static (CGO_ENABLED=0), -trimpath,
// without symbol tables (-s -w); Strata also with the build tags of its
// Dockerfile (TestBuildMatchesDockerfile keeps the two the same).
// PocketBase's releases are built static and with -s -w too. A build with
// cgo maps libc and the dynamic loader, and without grpcnotrace links
// packages Strata never runs: 41 MiB idle RSS at start instead of 33.
const strataTags = "timetzdata,grpcnotrace"

// buildTargets builds the binary of every target into dir (the Go build
// cache makes a second run quick) and sets the targets' bin and version.
func buildTargets(ctx context.Context, root, dir string, ts []*target, logf func(string, ...any)) error {
	built := map[string]string{} // package -> binary
	for _, t := range ts {
		// Another checkout (strata-baseline) builds from its own root into
		// a binary named after the target.
		src, key, out := root, t.build, filepath.Join(dir, filepath.Base(t.build))
		if t.src != "" {
			src, key, out = t.src, filepath.Join(t.src, t.build), filepath.Join(dir, t.name)
		}
		version := gitVersion(ctx, src)
		bin, ok := built[key]
		if !ok {
			bin = out
			args := []string{"build", "-o", bin, "-trimpath"}
			pkg := "./" + t.build
			if rest, ok := strings.CutPrefix(t.build, "bench/"); ok {
				src, pkg = filepath.Join(src, "bench"), "./"+rest
				args = append(args, "-ldflags", "-s -w")
			} else {
				args = append(args, "-tags", strataTags, "-ldflags", "-s -w -X main.Version="+version)
			}
			logf("building %s", key)
			cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %w\n%s", key, err, out)
			}
			built[key] = bin
		}
		t.bin = bin
		t.version = binaryVersion(bin, t.name, version)
	}
	return nil
}

// binaryVersion describes what a built binary is, from its build info.
func binaryVersion(bin, name, strataVersion string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	deps := depVersions(info)
	switch name {
	case "ceiling":
		return "net/http, " + info.GoVersion
	case "floor":
		return "net/http + modernc.org/sqlite " + deps["modernc.org/sqlite"]
	case "strata-sqlite", baselineName:
		return "strata " + strataVersion + " (modernc.org/sqlite " + deps["modernc.org/sqlite"] + ")"
	case "strata-postgres":
		return "strata " + strataVersion + " (pgx " + deps["github.com/jackc/pgx/v5"] + ")"
	case "pocketbase":
		return "pocketbase " + deps["github.com/pocketbase/pocketbase"] + " (modernc.org/sqlite " + deps["modernc.org/sqlite"] + ")"
	}
	return info.Main.Version
}

// depVersions maps the modules a program was built with to their
// versions, replacements applied.
func depVersions(info *debug.BuildInfo) map[string]string {
	deps := map[string]string{}
	for _, d := range info.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		deps[d.Path] = v
	}
	return deps
}

// gitVersion names the commit of the working tree, with -dirty when it
// has changes.
func gitVersion(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

// goVersion is the version of the go command that builds the targets.
func goVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
