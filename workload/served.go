package workload

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
)

// judgeServed decides, for a workload no Service of the input selects,
// whether to judge it as served anyway: when the input holds no Service at
// all, the Service most likely lives in another file or chart, and a
// workload that declares a container port is judged as served rather than
// passed unchecked. It also records whether the max request duration was
// annotated, for the recommendation's inputs.
func (g *graph) judgeServed(w *Workload) {
	for _, list := range g.services {
		w.InputServices += len(list)
	}
	switch d := w.Object.Obj.(type) {
	case *appsv1.Deployment:
		_, w.MaxRequestAnnotated = d.Annotations[AnnotationMaxRequestDuration]
	case *appsv1.StatefulSet:
		_, w.MaxRequestAnnotated = d.Annotations[AnnotationMaxRequestDuration]
	}
	if _, ok := w.Template.Annotations[AnnotationMaxRequestDuration]; ok {
		w.MaxRequestAnnotated = true
	}
	if len(w.Services) > 0 || w.InputServices > 0 {
		return
	}
	for _, c := range w.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort > 0 {
				w.AssumedPort = strconv.Itoa(int(p.ContainerPort))
				return
			}
		}
	}
}
