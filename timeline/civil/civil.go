// Package civil is the calendar arithmetic that rollsafe's hand-rolled
// timestamp parsers share (timeline's RFC 3339 decoder and the ALB access-log
// parser in observe/accesslog): runs of ASCII digits and the length of a
// month. Both parse one timestamp per record on the hot path, so nothing
// here allocates, and each function is small enough to be inlined.
package civil

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// Digits parses b, ASCII digits only, as a decimal number (0 when b is
// empty); false for any other byte. Callers pass fixed-width fields.
func Digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !IsDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// DaysIn is the number of days in month (1-12) of year, in the proleptic
// Gregorian calendar the time package uses.
func DaysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
