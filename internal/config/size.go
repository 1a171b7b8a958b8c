package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units ParseSize accepts, matched without regard to
// case: decimal (kB = 1000) and binary (KiB = 1024) multiples of bytes.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a number of bytes such as "64MiB", "1.5 GB" or
// "1048576": a decimal number, optional spaces and an optional unit (B,
// kB, MB, GB, TB, KiB, MiB, GiB or TiB, in any case). A fraction is
// rounded down to a whole byte.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, rawUnit := t[:i], strings.TrimSpace(t[i:])
	unit := strings.ToLower(rawUnit)
	if num == "" {
		return 0, errors.New("does not start with a number")
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, errors.New("has unit " + strconv.Quote(rawUnit) + ", not one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB")
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n > math.MaxUint64/mult {
			return 0, errors.New("is too large")
		}
		return n * mult, nil
	}
	if strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, errors.New("has a number that is not like 64 or 1.5")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("has a number that is not like 64 or 1.5")
	}
	v := f * float64(mult)
	if v >= math.MaxUint64 {
		return 0, errors.New("is too large")
	}
	return uint64(v), nil
}

// cache_size bounds.
const (
	minCacheSize = 1 << 20
	maxCacheSize = 1 << 40
)

func checkCacheSize(s string) string {
	n, err := ParseSize(s)
	if err != nil {
		return "is not a size such as 64MiB or 1GB: it " + err.Error()
	}
	if n < minCacheSize || n > maxCacheSize {
		return "is not between 1MiB and 1TiB"
	}
	return ""
}

// maxMmapSize bounds sqlite_mmap_size; SQLite itself maps at most
// 0x7fff0000 bytes and takes a larger value as that.
const maxMmapSize = 1 << 40

func checkMmapSize(s string) string {
	n, err := ParseSize(s)
	if err != nil {
		return "is not a size such as 256MiB or 0: it " + err.Error()
	}
	if n > maxMmapSize {
		return "is larger than 1TiB"
	}
	return ""
}

// SQLiteMmapBytes returns sqlite_mmap_size in bytes. c must be valid.
func (c Config) SQLiteMmapBytes() int64 {
	n, _ := ParseSize(c.SQLiteMmapSize)
	return int64(n)
}

// CacheBytes returns cache_size in bytes. c must be valid.
func (c Config) CacheBytes() uint64 {
	n, _ := ParseSize(c.CacheSize)
	return n
}

// CacheBackend returns where the cache lives: "memory", "redis" or "off".
// "auto" is redis when redis_url is set, else memory. c must be valid.
func (c Config) CacheBackend() string {
	if c.Cache == "auto" {
		if c.RedisURL != "" {
			return "redis"
		}
		return "memory"
	}
	return c.Cache
}
