package chunker

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestIDRoundTrip(t *testing.T) {
	id := Sum([]byte("hello"))
	const want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if id.String() != want {
		t.Fatalf("Sum(hello) = %s, want %s", id, want)
	}
	if got := ObjectKey(id); got != "chunks/"+want {
		t.Errorf("ObjectKey = %q", got)
	}
	back, err := ParseID(want)
	if err != nil || back != id {
		t.Fatalf("ParseID(%q) = %v, %v", want, back, err)
	}
	js, err := json.Marshal(struct{ ID ID }{id})
	if err != nil || string(js) != `{"ID":"`+want+`"}` {
		t.Fatalf("json = %s, %v", js, err)
	}
	var v struct{ ID ID }
	if err := json.Unmarshal(js, &v); err != nil || v.ID != id {
		t.Fatalf("json back = %v, %v", v.ID, err)
	}
	if id.IsZero() || !(ID{}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestParseIDBad(t *testing.T) {
	good := Sum(nil).String()
	for _, s := range []string{
		"",
		good[:63],
		good + "0",
		strings.ToUpper(good),
		"g" + good[1:],
		" " + good[1:],
		strings.Repeat("z", 200),
	} {
		_, err := ParseID(s)
		if !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) = %v, want ErrBadID", s, err)
		}
	}
	var id ID
	if err := json.Unmarshal([]byte(`"xyz"`), &id); !errors.Is(err, ErrBadID) {
		t.Errorf("json bad id: %v", err)
	}
}
