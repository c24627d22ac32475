package alb

import (
	"fmt"
	"strconv"
	"strings"
)

// SuccessCodes is a parsed success-code spec (a target group's Matcher
// HttpCode): a list of inclusive ranges. Package nlb parses its HTTP health
// checks' matcher with it too.
type SuccessCodes [][2]int

// matcher is the ALB's success codes.
type matcher = SuccessCodes

// parseMatcher reads the ALB HttpCode syntax: "200", "200,202", "200-299".
// ALB accepts codes 200-499 for HTTP health checks.
func parseMatcher(spec string) (matcher, error) { return ParseSuccessCodes(spec, 200, 499) }

// ParseSuccessCodes reads the HttpCode syntax ("200", "200,202",
// "200-299") and accepts codes from min to max, which differ by load
// balancer type (ALB 200-499, NLB 200-599).
func ParseSuccessCodes(spec string, min, max int) (SuccessCodes, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("empty success-code spec")
	}
	var m SuccessCodes
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCode(lo, min, max)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", spec, err)
		}
		b := a
		if isRange {
			if b, err = parseCode(hi, min, max); err != nil {
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

func parseCode(s string, min, max int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a status code", s)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("code %d outside %d-%d", n, min, max)
	}
	return n, nil
}

// Match reports whether code is a success.
func (m SuccessCodes) Match(code int) bool {
	for _, r := range m {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}
