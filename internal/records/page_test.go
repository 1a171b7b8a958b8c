package records

import (
	"reflect"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/schema"
)

func TestPageEncoding(t *testing.T) {
	c := &schema.Collection{Name: "posts", Fields: []*schema.Field{{Name: "title", Type: schema.Text}, {Name: "n", Type: schema.Number}}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	total := int64(7)
	for _, p := range []*Page{
		{Items: []*schema.Record{}},
		{NextCursor: "abc.def", Total: &total, Items: []*schema.Record{
			{Collection: c, ID: "r1", Created: at, Updated: at, Values: schema.Values{"title": "x", "n": 1.5}},
			{Collection: c, ID: "r2", Created: at, Updated: at, Values: schema.Values{"title": nil, "n": nil}},
		}},
	} {
		b, err := encodePage(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodePage(c, b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
		}
		// Every truncation is refused, never a panic.
		for i := range b {
			if _, err := decodePage(c, b[:i]); err == nil {
				t.Fatalf("a page cut at %d of %d bytes decoded", i, len(b))
			}
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	c := &schema.Collection{Name: "posts", Fields: []*schema.Field{{Name: "title", Type: schema.Text}}}
	b, _ := encodePage(&Page{NextCursor: "x", Items: []*schema.Record{{Collection: c, ID: "a", Values: schema.Values{"title": "t"}}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePage(c, data)
		if err != nil {
			return
		}
		again, err := encodePage(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodePage(c, again); err != nil {
			t.Fatalf("re-encoded page does not decode: %v", err)
		}
	})
}
