package k8scheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ConfigCheck runs `strata config check` with the flags of args (the words
// after the leading command words, such as "serve" or "migrate up") and
// exactly the environment env, and fails unless strata accepts them and
// every variable of env is one it read.
func ConfigCheck(bin string, env map[string]string, args []string) error {
	i := 0
	for i < len(args) && !strings.HasPrefix(args[i], "-") {
		i++
	}
	cmd := exec.Command(bin, append([]string{"config", "check"}, args[i:]...)...)
	cmd.Dir = os.TempDir()
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("strata config check %s: %v: %s", strings.Join(args[i:], " "), err, strings.TrimSpace(stderr.String()))
	}
	out, _, _ := strings.Cut(stdout.String(), "\nconfiguration is valid")
	var keys map[string]struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		return fmt.Errorf("strata config check: reading its output: %w", err)
	}
	read := map[string]bool{}
	for _, k := range keys {
		read[k.Source] = true
	}
	var unread []string
	for k := range env {
		if !read[k] {
			unread = append(unread, k)
		}
	}
	slices.Sort(unread)
	if len(unread) > 0 {
		return fmt.Errorf("strata config check: %v set but not read (a flag given too?)", unread)
	}
	return nil
}

// BuildFiles lists the files, relative to root, that `go build` of pkg
// reads: go.mod, go.sum, and the Go and embedded files of every package of
// the main module it builds.
func BuildFiles(root, pkg string, tags string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-tags", tags, "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	files := []string{"go.mod", "go.sum"}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			rel, err := filepath.Rel(abs, line)
			if err != nil {
				return nil, err
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	return files, sc.Err()
}

// Ignored returns the files of files that the .dockerignore in root leaves
// out of the build context.
func Ignored(root string, files []string) ([]string, error) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, file := range files {
		ok, err := pm.MatchesOrParentMatches(file)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, file)
		}
	}
	return out, nil
}

// Dockerfile is what the checks need of a Dockerfile: its stages and
// instructions, with continuation lines joined.
type Dockerfile struct {
	Instructions []Instruction
}

type Instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// ParseDockerfile reads the instructions of a Dockerfile.
func ParseDockerfile(data []byte) (*Dockerfile, error) {
	df := &Dockerfile{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			line = strings.TrimSuffix(line, "\\") + " " + next
		}
		cmd, args, _ := strings.Cut(line, " ")
		df.Instructions = append(df.Instructions, Instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
	}
	if len(df.Instructions) == 0 {
		return nil, errors.New("no instructions")
	}
	return df, nil
}

var fromRE = regexp.MustCompile(`^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)

// Check checks the Dockerfile's shape: a multi-stage build whose base images
// are pinned (the build stage to goVersion), and a final stage that runs
// the static binary as an unprivileged user.
func (df *Dockerfile) Check(goVersion string) []error {
	var errs []error
	args := map[string]string{}
	var stages []string // base image of each stage
	var final []Instruction
	for _, in := range df.Instructions {
		switch in.Cmd {
		case "ARG":
			if k, v, ok := strings.Cut(in.Args, "="); ok && len(stages) == 0 {
				args[k] = v
			}
		case "FROM":
			m := fromRE.FindStringSubmatch(in.Args)
			if m == nil {
				errs = append(errs, fmt.Errorf("line %d: FROM %s: not understood", in.Line, in.Args))
				continue
			}
			image := os.Expand(m[1], func(k string) string { return args[k] })
			stages = append(stages, image)
			final = nil
			if image != "scratch" {
				if err := CheckImage(image); err != nil {
					errs = append(errs, fmt.Errorf("line %d: %v", in.Line, err))
				}
			}
			if strings.HasPrefix(image, "golang:") {
				tag := strings.TrimPrefix(image, "golang:")
				tag, _, _ = strings.Cut(tag, "@")
				if v, _, _ := strings.Cut(tag, "-"); v != goVersion {
					errs = append(errs, fmt.Errorf("line %d: the build stage is %s, but go.mod says go %s", in.Line, image, goVersion))
				}
			}
			continue
		}
		final = append(final, in)
	}
	if len(stages) < 2 {
		errs = append(errs, fmt.Errorf("%d stages, want a multi-stage build", len(stages)))
	}
	has := func(cmd, contains string) bool {
		for _, in := range final {
			if in.Cmd == cmd && strings.Contains(in.Args, contains) {
				return true
			}
		}
		return false
	}
	user := ""
	for _, in := range final {
		if in.Cmd == "USER" {
			user = in.Args
		}
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:") {
		errs = append(errs, fmt.Errorf("the final stage runs as %q, want an unprivileged USER", user))
	}
	for _, want := range [][2]string{
		{"ENTRYPOINT", `["/strata"]`},
		{"EXPOSE", "8090"},
		{"VOLUME", "/data"},
		{"COPY", "/strata"},
		{"LABEL", "org.opencontainers.image.source"},
		{"LABEL", "org.opencontainers.image.version"},
	} {
		if !has(want[0], want[1]) {
			errs = append(errs, fmt.Errorf("the final stage has no %s %s", want[0], want[1]))
		}
	}
	build := df.BuildCommand()
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "./cmd/strata"} {
		if !strings.Contains(build, want) {
			errs = append(errs, fmt.Errorf("the build command %q has no %s", build, want))
		}
	}
	return errs
}

// BuildCommand returns the RUN instruction that runs go build, without its
// --mount options.
func (df *Dockerfile) BuildCommand() string {
	for _, in := range df.Instructions {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			var words []string
			for _, w := range strings.Fields(in.Args) {
				if !strings.HasPrefix(w, "--mount=") {
					words = append(words, w)
				}
			}
			return strings.Join(words, " ")
		}
	}
	return ""
}

// GoVersion returns the go directive of a go.mod.
func GoVersion(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
