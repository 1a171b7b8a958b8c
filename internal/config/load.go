package config

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Register adds a flag for every configuration key to fs, named for the key
// in kebab case (--log-level), and --config to name the config file. The
// flags hold text; Load parses and checks it, so a bad flag value gets the
// same error as a bad environment or file value.
func Register(fs *flag.FlagSet) {
	fs.Var(&textValue{}, configFlag,
		"TOML config `file` (env STRATA_CONFIG); default ./strata.toml when it exists; \"\" reads no file")
	d := Default()
	for _, k := range keys {
		p := k.ptr(&d)
		_, isBool := p.(*bool)
		fs.Var(&textValue{text: format(p), isBool: isBool}, k.flag(), k.usage+" (env "+k.env+")")
	}
}

// textValue is a flag.Value that keeps the text it was given.
type textValue struct {
	text   string
	isBool bool
}

func (v *textValue) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *textValue) Set(s string) error { v.text = s; return nil }
func (v *textValue) IsBoolFlag() bool   { return v.isBool }

// setting is a flag the user set on the command line.
type setting struct{ name, value string }

// Load builds a Config from fs, env and a config file, in that order of
// precedence, over the defaults, and validates it. fs is the command's flag
// set after Parse; only the flags the user set count, and flags that are not
// configuration keys are ignored. fs may be nil. env is a list of
// NAME=VALUE, as os.Environ returns.
//
// The config file is the one named by --config, else by STRATA_CONFIG, else
// ./strata.toml if it exists. A file named explicitly must exist; naming ""
// reads no file.
//
// Unknown file keys, unknown STRATA_* environment variables and bad values
// are errors that name the key, the value, what is allowed and the source.
func Load(fs *flag.FlagSet, env []string) (Config, error) {
	var flags []setting
	if fs != nil {
		fs.Visit(func(f *flag.Flag) {
			flags = append(flags, setting{f.Name, f.Value.String()})
		})
	}
	file, fileSource, explicit := configFile(flags, env)
	var data []byte
	if file != "" {
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			data = b
		case !explicit && errors.Is(err, os.ErrNotExist):
			file = ""
		case explicit:
			return Config{}, fmt.Errorf("config: config file named by %s: %w", fileSource, err)
		default:
			return Config{}, fmt.Errorf("config: %w", err)
		}
	}
	return build(file, fileSource, data, env, flags)
}

// configFile returns the config file to read, what named it and whether it
// was named explicitly.
func configFile(flags []setting, env []string) (file, source string, explicit bool) {
	for _, s := range flags {
		if s.name == configFlag {
			return s.value, "--" + configFlag, true
		}
	}
	found := false
	for _, e := range env {
		if name, value, ok := strings.Cut(e, "="); ok && name == configEnv {
			file, found = value, true
		}
	}
	if found {
		return file, configEnv, true
	}
	return defaultFile, sourceDefault, false
}

// build applies the file's contents, then env, then flags over the defaults
// and validates the result. It reports every problem it finds, one per line.
func build(file, fileSource string, data []byte, env []string, flags []setting) (Config, error) {
	c := Default()
	c.origin = &origin{file: file, fileSource: fileSource, sources: make(map[string]string, len(keys))}
	for _, k := range keys {
		c.origin.sources[k.name] = sourceDefault
	}
	var errs []error
	if file != "" {
		errs = append(errs, c.applyFile(file, data)...)
	}
	errs = append(errs, c.applyEnv(env)...)
	errs = append(errs, c.applyFlags(flags)...)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) applyFile(file string, data []byte) []error {
	var m map[string]any
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return []error{fmt.Errorf("config: %s line %d: %s", file, pe.Position.Line, pe.Message)}
		}
		return []error{fmt.Errorf("config: %s: %w", file, err)}
	}

	// Visit top-level keys in the order they appear in the file.
	var names []string
	for _, k := range md.Keys() {
		if _, ok := m[k[0]]; ok && !slices.Contains(names, k[0]) {
			names = append(names, k[0])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}

	var errs []error
	for _, name := range names {
		v := m[name]
		k, ok := keyByName(name)
		if !ok {
			errs = append(errs, fmt.Errorf("config: unknown key %q in %s (known keys: %s)", name, file, keyNames()))
			continue
		}
		text, problem := fromTOML(c, k, v)
		if problem == "" {
			problem = set(c, k, text)
		}
		if problem != "" {
			errs = append(errs, valueError(k.name, showTOML(k, v), problem, file))
			continue
		}
		c.origin.sources[k.name] = file
	}
	return errs
}

func (c *Config) applyEnv(env []string) []error {
	var errs []error
	for _, e := range env {
		name, value, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(name, "STRATA_") || name == configEnv || ignoredEnv(name) {
			continue
		}
		i := slices.IndexFunc(keys, func(k key) bool { return k.env == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s (known: %s)", name, envNames()))
			continue
		}
		k := keys[i]
		if problem := set(c, k, value); problem != "" {
			errs = append(errs, valueError(k.name, showRaw(k, value), problem, name))
			continue
		}
		c.origin.sources[k.name] = name
	}
	return errs
}

func (c *Config) applyFlags(flags []setting) []error {
	var errs []error
	for _, s := range flags {
		i := slices.IndexFunc(keys, func(k key) bool { return k.flag() == s.name })
		if i < 0 {
			continue // --config, or a flag of the command itself
		}
		k := keys[i]
		if problem := set(c, k, s.value); problem != "" {
			errs = append(errs, valueError(k.name, showRaw(k, s.value), problem, "--"+s.name))
			continue
		}
		c.origin.sources[k.name] = "--" + s.name
	}
	return errs
}
