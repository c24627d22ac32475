package probe

import (
	"fmt"
	"strconv"
	"strings"
)

// Budget is a CI gate on a run's failures. A negative field is unset.
type Budget struct {
	MaxFailures int64   // most failed requests allowed
	MaxRatio    float64 // most failed/requests allowed, 0.001 for 0.1 %
}

// NoBudget never fails.
var NoBudget = Budget{MaxFailures: -1, MaxRatio: -1}

// ParseRatio reads an error budget: "0.1%" or the fraction "0.001".
func ParseRatio(v string) (float64, error) {
	s := strings.TrimSpace(v)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a ratio like 0.1%% or 0.001", v)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is outside 0..100%%", v)
	}
	return f, nil
}

// Exceeded says why s is past the budget, or "" when it is within it.
func (b Budget) Exceeded(s *Summary) string {
	failed := s.Failed()
	if b.MaxFailures >= 0 && failed > uint64(b.MaxFailures) {
		return fmt.Sprintf("%d failed requests, budget %d", failed, b.MaxFailures)
	}
	if b.MaxRatio >= 0 && s.Requests > 0 {
		if r := float64(failed) / float64(s.Requests); r > b.MaxRatio {
			return fmt.Sprintf("%.4g%% of requests failed (%d of %d), budget %.4g%%",
				100*r, failed, s.Requests, 100*b.MaxRatio)
		}
	}
	return ""
}
