package lab

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/albcontroller"
	"github.com/rollsafe/rollsafe/cluster"
)

// embedded runs the scenario on the in-process cluster stand-in.
type embedded struct {
	cl   *cluster.Cluster
	d    *cluster.Deployment
	ctrl *albcontroller.Controller
}

func startEmbedded(ctx context.Context, r *run) (platform, error) {
	e := &embedded{}
	opts := r.controllerOptions()
	opts.Get = func(name string) (*corev1.Pod, bool) {
		p, ok := e.cl.Pod(name)
		if !ok {
			return nil, false
		}
		return p.Status(), true
	}
	opts.SetGate = func(p *corev1.Pod, t corev1.PodConditionType) error {
		return e.cl.SetCondition(p.Name, t, corev1.ConditionTrue)
	}
	e.ctrl = albcontroller.New(ctx, opts)
	var err error
	e.cl, err = cluster.New(ctx, cluster.Options{
		Port: AppPort, Command: r.o.App, Scale: r.scale, Scenario: r.s.Name,
		Sink:   sinkFunc(r.onPodRecord),
		OnPod:  func(ev cluster.PodEvent) { e.ctrl.Observe(ev.Pod) },
		Stdout: r.o.PodOutput, Stderr: r.o.PodOutput,
	})
	if err != nil {
		return nil, err
	}
	if e.d, err = e.cl.CreateDeployment(deployment(r.s, r.scale)); err != nil {
		e.close()
		return nil, err
	}
	if err := e.d.WaitComplete(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("first revision never became available: %w", err)
	}
	return e, nil
}

func (e *embedded) rollout(ctx context.Context, t corev1.PodTemplateSpec) error {
	return e.d.Rollout(ctx, t)
}

func (e *embedded) terminating() bool {
	for _, p := range e.cl.Pods() {
		if p.DeletionTimestamp != nil {
			return true
		}
	}
	return false
}

func (e *embedded) close() {
	if e.cl != nil {
		e.cl.Close()
	}
	e.ctrl.Wait()
}

func (e *embedded) namespace() string { return namespace }
