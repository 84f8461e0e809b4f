package sqlwhere

import (
	"reflect"
	"testing"
)

func TestWhere(t *testing.T) {
	var w Where
	if !w.Empty() || w.String() != "" {
		t.Fatalf("zero Where = %q, want empty", w.String())
	}
	w.Add("tenant_id = ?", int64(7))
	w.Add("(name ILIKE ? OR email ILIKE ?)", "%ann%")
	limit := w.Next(50)
	w.Add("id < ?", int64(90))
	if got, want := w.String(), "tenant_id = $1 AND (name ILIKE $2 OR email ILIKE $2) AND id < $4"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if limit != "$3" {
		t.Errorf("Next = %q, want $3", limit)
	}
	if got, want := w.Args(), []any{int64(7), "%ann%", 50, int64(90)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Args() = %v, want %v", got, want)
	}
	if w.Empty() {
		t.Error("Empty() after Add")
	}
}
