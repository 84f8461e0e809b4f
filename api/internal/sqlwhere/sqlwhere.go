// Package sqlwhere builds the WHERE clause of the API stores' list
// queries: a conjunction of only the filters a request uses, with numbered
// parameters. (An optional filter written as "$n = 0 OR col = $n" would
// keep a generic plan from using the column's index.)
//
// It imports only the standard library; values always travel as
// parameters, never in the SQL text.
package sqlwhere

import (
	"strconv"
	"strings"
)

// Where is a conjunction of conditions and their parameters. The zero
// value is empty and ready to use.
type Where struct {
	conds []string
	args  []any
}

// Add appends cond, whose every "?" stands for v.
func (w *Where) Add(cond string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

// Cond appends a condition that takes no parameter.
func (w *Where) Cond(cond string) { w.conds = append(w.conds, cond) }

// Next returns the placeholder of the next parameter v (for LIMIT,
// OFFSET or a value outside the WHERE clause).
func (w *Where) Next(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// Args returns the parameters, in placeholder order.
func (w *Where) Args() []any { return w.args }

// Empty reports whether no condition was added.
func (w *Where) Empty() bool { return len(w.conds) == 0 }

// String returns the conditions joined by AND ("" when there are none).
func (w *Where) String() string { return strings.Join(w.conds, " AND ") }
