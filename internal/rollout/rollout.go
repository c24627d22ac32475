// Package rollout holds the Deployment rolling-update arithmetic that both
// `check` (judging manifests) and the lab's Deployment controller (cluster)
// need, so the two can never disagree: maxSurge and maxUnavailable resolved
// to pod counts for a number of replicas as kube-controller-manager's
// deployment controller resolves them (deploymentutil.ResolveFenceposts),
// with the API server's defaults and its both-zero validation beside it.
package rollout

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Defaults the apps/v1 API server sets for a RollingUpdate Deployment that
// leaves the field out (SetDefaults_Deployment).
var (
	DefaultMaxSurge       = intstr.FromString("25%")
	DefaultMaxUnavailable = intstr.FromString("25%")
)

// Field names, as in spec.strategy.rollingUpdate.
const (
	FieldMaxSurge       = "maxSurge"
	FieldMaxUnavailable = "maxUnavailable"
)

// FieldError is a value the deployment controller cannot use: not an
// integer or a percentage ("10", "x%"), or negative.
type FieldError struct {
	Field string // FieldMaxSurge or FieldMaxUnavailable
	Value string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: want a non-negative integer or a percentage", e.Field, e.Value)
}

// Scale resolves one value against replicas: an integer as is, a
// percentage of replicas rounded up (roundUp, as for maxSurge) or down (as
// for maxUnavailable). A nil v is 0. The error is a *FieldError.
func Scale(field string, v *intstr.IntOrString, replicas int, roundUp bool) (int, error) {
	if v == nil {
		return 0, nil
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, replicas, roundUp)
	if err != nil || n < 0 {
		return 0, &FieldError{Field: field, Value: v.String()}
	}
	return n, nil
}

// Fenceposts resolves a RollingUpdate strategy for replicas the way the
// deployment controller does: maxSurge a percentage of replicas rounded
// up, maxUnavailable rounded down, and when both come out 0 (a 0 maxSurge
// with a maxUnavailable percentage that rounds down to nothing) one pod may
// be unavailable so the rollout can move at all. A nil field takes the API
// server's default (25 %), as a manifest that never went through it would.
//
// A bad field is returned as a *FieldError (both, joined, when both are
// bad); it then counts 0 and the one-unavailable rule is not applied, so
// the other field's count stays usable. Fenceposts does not refuse what
// the API server refuses on its own (see BothZero): the controller never
// sees such a Deployment.
func Fenceposts(maxSurge, maxUnavailable *intstr.IntOrString, replicas int) (surge, unavailable int, err error) {
	if maxSurge == nil {
		maxSurge = &DefaultMaxSurge
	}
	if maxUnavailable == nil {
		maxUnavailable = &DefaultMaxUnavailable
	}
	surge, errS := Scale(FieldMaxSurge, maxSurge, replicas, true)
	unavailable, errU := Scale(FieldMaxUnavailable, maxUnavailable, replicas, false)
	if err = errors.Join(errS, errU); err != nil {
		return surge, unavailable, err
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable, nil
}

// BothZero says whether the API server rejects the pair ("maxUnavailable
// may not be 0 when maxSurge is 0"): both written as 0 or 0 %. A pair that
// only rounds to 0 is valid and moves one pod at a time (Fenceposts).
func BothZero(maxSurge, maxUnavailable *intstr.IntOrString) bool {
	return isZero(maxSurge) && isZero(maxUnavailable)
}

// isZero is the API server's getIntOrPercentValue(v) == 0 for a value
// that is set: 0, or a percentage whose number is 0.
func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return false
	}
	if v.Type == intstr.Int {
		return v.IntVal == 0
	}
	s := v.StrVal
	if len(s) < 2 || s[len(s)-1] != '%' {
		return false
	}
	for _, c := range s[:len(s)-1] {
		if c != '0' {
			return false
		}
	}
	return true
}
