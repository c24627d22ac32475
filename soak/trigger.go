package soak

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
)

// RestartedAtAnnotation is the pod-template annotation the default trigger
// sets, as `kubectl rollout restart` sets kubectl.kubernetes.io/restartedAt:
// a new value changes the template hash, so the Deployment rolls.
const RestartedAtAnnotation = "rollsafe.dev/restartedAt"

// TriggerKind says which part of the pod template a rollout changes.
type TriggerKind string

const (
	TriggerAnnotation TriggerKind = "annotation" // RestartedAtAnnotation = now
	TriggerEnv        TriggerKind = "env"        // env var of the first container = sequence
	TriggerArg        TriggerKind = "arg"        // args[Index] of the first container = sequence
)

// Trigger is how soak starts a rollout. The env and arg triggers carry an
// incrementing sequence number the app can answer with (seed 003's dummy
// echoed its arg), so "the new version answers" has a known expected value.
type Trigger struct {
	Kind  TriggerKind
	Env   string // TriggerEnv: the variable's name
	Index int    // TriggerArg: the argument's index
}

// ParseTrigger reads "annotation", "env:NAME" or "arg:INDEX".
func ParseTrigger(v string) (Trigger, error) {
	kind, param, _ := strings.Cut(v, ":")
	switch TriggerKind(kind) {
	case TriggerAnnotation:
		if param != "" {
			return Trigger{}, fmt.Errorf("%q: annotation takes no parameter", v)
		}
		return Trigger{Kind: TriggerAnnotation}, nil
	case TriggerEnv:
		if param == "" || strings.ContainsAny(param, "= \t") {
			return Trigger{}, fmt.Errorf("%q: want env:NAME", v)
		}
		return Trigger{Kind: TriggerEnv, Env: param}, nil
	case TriggerArg:
		i, err := strconv.Atoi(param)
		if err != nil || i < 0 {
			return Trigger{}, fmt.Errorf("%q: want arg:INDEX with INDEX a number ≥ 0", v)
		}
		return Trigger{Kind: TriggerArg, Index: i}, nil
	}
	return Trigger{}, fmt.Errorf("%q: want annotation, env:NAME or arg:INDEX", v)
}

func (t Trigger) String() string {
	switch t.Kind {
	case TriggerEnv:
		return "env:" + t.Env
	case TriggerArg:
		return "arg:" + strconv.Itoa(t.Index)
	}
	return string(TriggerAnnotation)
}

// Sequenced says whether the trigger writes a sequence number the app can
// answer with.
func (t Trigger) Sequenced() bool { return t.Kind == TriggerEnv || t.Kind == TriggerArg }

// patch is one rollout's change to the pod template.
type patch struct {
	typ  types.PatchType
	data []byte
	seq  uint64 // the value written by a sequenced trigger
}

// current reads the value the trigger last wrote ("" when none), failing
// when the Deployment cannot take this trigger at all.
func (t Trigger) current(d *appsv1.Deployment) (string, error) {
	cs := d.Spec.Template.Spec.Containers
	if t.Kind == TriggerAnnotation {
		return d.Spec.Template.Annotations[RestartedAtAnnotation], nil
	}
	if len(cs) == 0 {
		return "", &InputError{fmt.Sprintf("deployment %s/%s has no containers", d.Namespace, d.Name)}
	}
	c := cs[0]
	if t.Kind == TriggerEnv {
		for _, e := range c.Env {
			if e.Name == t.Env {
				if e.ValueFrom != nil {
					return "", &InputError{fmt.Sprintf("--trigger %s: container %q sets %s with valueFrom; soak can only set a literal value", t, c.Name, t.Env)}
				}
				return e.Value, nil
			}
		}
		return "", nil // added on the first rollout, as `kubectl set env` would
	}
	if t.Index >= len(c.Args) {
		return "", &InputError{fmt.Sprintf("--trigger %s: container %q has %d args, no index %d", t, c.Name, len(c.Args), t.Index)}
	}
	return c.Args[t.Index], nil
}

// next builds the patch for the next rollout of d. A sequenced trigger
// continues from the number it finds (0 when the value is not a number),
// so a restarted soak does not write a value the app already answered with.
func (t Trigger) next(d *appsv1.Deployment, now time.Time) (patch, error) {
	cur, err := t.current(d)
	if err != nil {
		return patch{}, err
	}
	var seq uint64
	if t.Sequenced() {
		prev, _ := strconv.ParseUint(cur, 10, 64)
		seq = prev + 1
	}
	val := strconv.FormatUint(seq, 10)
	switch t.Kind {
	case TriggerAnnotation:
		// Nanoseconds, unlike kubectl's seconds: two rollouts within one
		// second must still differ, or the second would change nothing.
		data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{RestartedAtAnnotation: now.UTC().Format(time.RFC3339Nano)}}}}})
		return patch{typ: types.StrategicMergePatchType, data: data}, err
	case TriggerEnv:
		// Strategic merge keys containers and env by name: only this
		// variable of this container changes.
		data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": d.Spec.Template.Spec.Containers[0].Name,
				"env": []any{map[string]string{"name": t.Env, "value": val}}}}}}}})
		return patch{typ: types.StrategicMergePatchType, data: data, seq: seq}, err
	default:
		// args is a plain list (strategic merge would replace it whole), so
		// a JSON patch, with a test op: if someone changed the arg since we
		// read it, the patch fails instead of overwriting their change.
		path := fmt.Sprintf("/spec/template/spec/containers/0/args/%d", t.Index)
		data, err := json.Marshal([]map[string]any{
			{"op": "test", "path": path, "value": cur},
			{"op": "replace", "path": path, "value": val},
		})
		return patch{typ: types.JSONPatchType, data: data, seq: seq}, err
	}
}

// InputError is a problem with what the user asked for (a Deployment that
// does not exist, a trigger it cannot take): fixing it is on the user.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }
