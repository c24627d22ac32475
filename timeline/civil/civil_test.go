package civil

import "testing"

func TestDigits(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		isOK bool
	}{{"2024", 2024, true}, {"09", 9, true}, {"", 0, true}, {"1a", 0, false}, {"-1", 0, false}, {" 1", 0, false}} {
		if n, ok := Digits([]byte(c.in)); n != c.n || ok != c.isOK {
			t.Errorf("Digits(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.isOK)
		}
	}
}

func TestDaysIn(t *testing.T) {
	for _, c := range []struct{ month, year, days int }{
		{2, 2023, 28}, {2, 2024, 29}, {2, 1900, 28}, {2, 2000, 29}, {4, 2024, 30}, {12, 2024, 31}, {1, 1, 31},
	} {
		if got := DaysIn(c.month, c.year); got != c.days {
			t.Errorf("DaysIn(%d, %d) = %d, want %d", c.month, c.year, got, c.days)
		}
	}
}
