package cmdutil

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Counts renders the non-zero entries of a count map as "a 3, b 1": keys
// in order first, in that order, then any others (a newer writer's class
// is never dropped), largest first. "" when there are none.
func Counts[K ~string](m map[K]uint64, order []K) string {
	var parts []string
	for _, k := range order {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	var rest []K
	for k, n := range m {
		if n > 0 && !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		return m[rest[i]] > m[rest[j]] || m[rest[i]] == m[rest[j]] && rest[i] < rest[j]
	})
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
