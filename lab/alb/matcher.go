package alb

import (
	"fmt"
	"strconv"
	"strings"
)

// matcher is a parsed success-code spec: a list of inclusive ranges.
type matcher [][2]int

// parseMatcher reads the ALB HttpCode syntax: "200", "200,202", "200-299".
// ALB accepts codes 200-499 for HTTP health checks.
func parseMatcher(spec string) (matcher, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("empty success-code spec")
	}
	var m matcher
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCode(lo)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", spec, err)
		}
		b := a
		if isRange {
			if b, err = parseCode(hi); err != nil {
				return nil, fmt.Errorf("%q: %v", spec, err)
			}
			if b < a {
				return nil, fmt.Errorf("%q: range %d-%d is reversed", spec, a, b)
			}
		}
		m = append(m, [2]int{a, b})
	}
	return m, nil
}

func parseCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a status code", s)
	}
	if n < 200 || n > 499 {
		return 0, fmt.Errorf("code %d outside 200-499", n)
	}
	return n, nil
}

func (m matcher) match(code int) bool {
	for _, r := range m {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}
