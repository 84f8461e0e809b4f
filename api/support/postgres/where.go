package postgres

import (
	"strconv"
	"strings"
)

// where builds a conjunction of conditions with numbered parameters, so
// list queries carry only the filters a request uses (an optional filter
// written as "$n = 0 OR col = $n" would keep a generic plan from using the
// column's index).
type where struct {
	conds []string
	args  []any
}

// add appends cond, whose "?" stands for v.
func (w *where) add(cond string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

// next returns the placeholder of the next parameter v (for LIMIT).
func (w *where) next(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }
