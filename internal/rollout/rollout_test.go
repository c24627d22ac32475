package rollout

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

func iv(v int) *intstr.IntOrString    { x := intstr.FromInt32(int32(v)); return &x }
func sv(v string) *intstr.IntOrString { x := intstr.FromString(v); return &x }
func fmtIOS(v *intstr.IntOrString) string {
	if v == nil {
		return "default"
	}
	return v.String()
}

func TestFenceposts(t *testing.T) {
	for _, c := range []struct {
		surge, unavail *intstr.IntOrString
		replicas       int
		wantS, wantU   int
	}{
		{nil, nil, 10, 3, 2}, // 25 %: 2.5 up and down
		{nil, nil, 1, 1, 0},  // 0.25: surge rounds up, unavailable down
		{nil, nil, 4, 1, 1},
		{sv("10%"), sv("10%"), 3, 1, 0}, // surge rounds up to 1: nothing to fix
		{iv(0), sv("10%"), 3, 0, 1},     // both 0 after rounding: one unavailable
		{sv("0%"), sv("25%"), 3, 0, 1},
		{iv(0), iv(1), 3, 0, 1},
		{iv(2), iv(0), 3, 2, 0},
		{sv("100%"), sv("100%"), 3, 3, 3},
		{sv("150%"), iv(0), 2, 3, 0},    // surge may pass 100 %
		{iv(5), iv(5), 3, 5, 5},         // integers are not capped
		{sv("25%"), sv("25%"), 0, 0, 1}, // scaled to 0 replicas
	} {
		s, u, err := Fenceposts(c.surge, c.unavail, c.replicas)
		if err != nil || s != c.wantS || u != c.wantU {
			t.Errorf("Fenceposts(%s, %s, %d) = %d, %d, %v; want %d, %d",
				fmtIOS(c.surge), fmtIOS(c.unavail), c.replicas, s, u, err, c.wantS, c.wantU)
		}
	}
}

func TestFencepostsBadValues(t *testing.T) {
	s, u, err := Fenceposts(sv("abc"), iv(1), 3)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != FieldMaxSurge || fe.Value != "abc" || s != 0 || u != 1 {
		t.Errorf("bad maxSurge: %d, %d, %v", s, u, err)
	}
	if got := err.Error(); got != `maxSurge "abc": want a non-negative integer or a percentage` {
		t.Errorf("message %q", got)
	}
	// Both bad: both named; the one-unavailable rule is not applied.
	_, _, err = Fenceposts(iv(-1), sv("5"), 3)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field+"="+fe.Value)
		}
	}
	if len(fields) != 2 || fields[0] != "maxSurge=-1" || fields[1] != "maxUnavailable=5" {
		t.Errorf("both bad: %v (%v)", fields, err)
	}
	if _, _, err := Fenceposts(iv(1), sv("-10%"), 3); !errors.As(err, &fe) || fe.Field != FieldMaxUnavailable {
		t.Errorf("negative percentage: %v", err)
	}
}

func TestBothZero(t *testing.T) {
	for _, c := range []struct {
		s, u *intstr.IntOrString
		want bool
	}{
		{iv(0), iv(0), true},
		{sv("0%"), iv(0), true},
		{sv("00%"), sv("0%"), true},
		{iv(0), sv("10%"), false}, // valid: rounds to 0, then one unavailable
		{nil, iv(0), false},       // nil takes the 25 % default
		{iv(0), sv("0"), false},   // not a percentage: a FieldError, not this
	} {
		if got := BothZero(c.s, c.u); got != c.want {
			t.Errorf("BothZero(%s, %s) = %v", fmtIOS(c.s), fmtIOS(c.u), got)
		}
	}
}
