package outbox

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzEventJSON: the hand-written encoding of an event is valid JSON that
// decodes to what encoding/json's does.
func FuzzEventJSON(f *testing.F) {
	f.Add("0190e6d3-7b4c-7000-8000-000000000001", "create", "posts", "abc", `{"id":"abc","title":"t"}`, int64(1700000000123456789))
	f.Add("\"quoted\" <&>", "update", "ünïcode\u2028", "\x00\x1f\\", `[1, 2.5e3, "x\u00e9"]`, int64(0))
	f.Add("", "", "", "\xff\xfe", `null`, int64(-62135596800))
	f.Fuzz(func(t *testing.T, id, op, collection, recordID, record string, nanos int64) {
		if !json.Valid([]byte(record)) {
			return
		}
		ev := Event{ID: id, Op: op, Collection: collection, RecordID: recordID, Record: json.RawMessage(record),
			Time: time.Unix(0, nanos).UTC()}
		want, err := json.Marshal(ev)
		if err != nil {
			return // a time encoding/json refuses; events carry the current time
		}
		got := ev.appendJSON(nil)
		var a, b Event
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s does not decode: %v", got, err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		// The record is compared as a value: encoding/json compacts it.
		var ra, rb any
		json.Unmarshal(a.Record, &ra)
		json.Unmarshal(b.Record, &rb)
		a.Record, b.Record = nil, nil
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ra, rb) || !a.Time.Equal(b.Time) {
			t.Fatalf("decoded\n%+v %v\nwant\n%+v %v", a, ra, b, rb)
		}
	})
}

// BenchmarkEventJSON compares the event's encoding with encoding/json's,
// for a post of a few fields.
func BenchmarkEventJSON(b *testing.B) {
	ev := Event{ID: "0190e6d3-7b4c-7000-8000-000000000001", Op: OpCreate, Collection: "posts", RecordID: "0190e6d3-7b4c-7000-8000-0000000000aa",
		Record: json.RawMessage(`{"id":"0190e6d3-7b4c-7000-8000-0000000000aa","created":"2026-11-23 20:00:00.000Z","updated":"2026-11-23 20:00:00.000Z",` +
			`"title":"A title of some length","body":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.",` +
			`"status":"published","author":"0190e6d3-7b4c-7000-8000-0000000000bb","views":1234}`),
		Time: time.Now().UTC()}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			ev.appendJSON(make([]byte, 0, len(ev.Record)+192))
		}
	})
}
