// Package albcontroller is the AWS Load Balancer Controller stand-in for ip
// targets, as the lab needs it:
//   - a pod whose containers are ready is registered (with a readiness gate
//     the controller registers pods before they are Ready — that is the
//     point of the gate; without one, Ready is ContainersReady);
//   - a terminating pod is deregistered;
//   - a pod with a target-health readiness gate gets the gate condition set
//     True once its target is healthy, re-checked every requeue period
//     (the controller's default is defaults.GateRequeue).
//
// Each ELBv2 call happens after a reconcile lag. The Controller is fed pod
// snapshots (Observe) and is level-triggered: it compares each snapshot with
// what it has done for that pod. The embedded lab feeds it from its cluster
// stand-in; Watch feeds it from a Kubernetes API server.
package albcontroller

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
)

// TargetGroup is the target group the controller registers pods in: the
// three ELBv2 calls it makes (RegisterTargets, DeregisterTargets,
// DescribeTargetHealth for the gate). *alb.LB and *nlb.LB are both one.
type TargetGroup interface {
	Register(targets ...alb.Target) error
	Deregister(targets ...alb.Target) error
	HealthOf(t alb.Target) alb.TargetHealth
}

// Options configure a Controller.
type Options struct {
	LB      TargetGroup
	Port    int           // target port: every pod serves on its own IP at this port
	Lag     time.Duration // reconcile lag before each ELBv2 call
	Requeue time.Duration // gate re-check period
	// Get returns the current pod by name (false when gone).
	Get func(name string) (*corev1.Pod, bool)
	// SetGate sets a readiness-gate condition True on the pod.
	SetGate func(pod *corev1.Pod, t corev1.PodConditionType) error
}

// Controller reconciles pods with a target group (Options.LB).
type Controller struct {
	ctx  context.Context
	opts Options

	mu         sync.Mutex
	registered map[string]string // pod name -> ip it was registered with
	closed     bool              // Wait was called: schedule nothing more
	pending    sync.WaitGroup
}

// New returns a controller; its pending actions stop when ctx ends.
func New(ctx context.Context, opts Options) *Controller {
	return &Controller{ctx: ctx, opts: opts, registered: map[string]string{}}
}

// Observe reconciles one pod snapshot.
func (c *Controller) Observe(pod *corev1.Pod) {
	ip := pod.Status.PodIP
	c.mu.Lock()
	regIP, isReg := c.registered[pod.Name]
	switch {
	case pod.DeletionTimestamp != nil || terminal(pod):
		if isReg {
			delete(c.registered, pod.Name)
			c.mu.Unlock()
			c.after(func() { c.opts.LB.Deregister(alb.Target{IP: regIP, Port: c.opts.Port}) })
			return
		}
	case !isReg && ip != "" && containersReady(pod):
		c.registered[pod.Name] = ip
		c.mu.Unlock()
		name := pod.Name
		c.after(func() {
			t := alb.Target{IP: ip, Port: c.opts.Port}
			c.opts.LB.Register(t)
			if hasGate(pod) {
				c.watchGate(name, t)
			}
		})
		return
	}
	c.mu.Unlock()
}

// Forget deregisters a pod that vanished without a terminating snapshot.
func (c *Controller) Forget(name string) {
	c.mu.Lock()
	ip, ok := c.registered[name]
	delete(c.registered, name)
	c.mu.Unlock()
	if ok {
		c.after(func() { c.opts.LB.Deregister(alb.Target{IP: ip, Port: c.opts.Port}) })
	}
}

// Wait stops the controller from scheduling anything new (a watch may
// still deliver events while the lab tears down) and returns when every
// pending action has run or given up.
func (c *Controller) Wait() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.pending.Wait()
}

// after runs fn once the reconcile lag has passed, unless ctx ends first.
func (c *Controller) after(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		select {
		case <-time.After(c.opts.Lag):
			fn()
		case <-c.ctx.Done():
		}
	}()
}

// watchGate polls target health every requeue period, as the controller's
// readiness-gate reconciler does, and sets the gates once healthy. It
// stops when the pod is gone or starts terminating.
func (c *Controller) watchGate(name string, t alb.Target) {
	for {
		p, ok := c.opts.Get(name)
		if !ok || p.DeletionTimestamp != nil || p.Status.PodIP != t.IP {
			return
		}
		if c.opts.LB.HealthOf(t).State == alb.StateHealthy {
			for _, g := range p.Spec.ReadinessGates {
				if strings.HasPrefix(string(g.ConditionType), defaults.GatePrefix) {
					c.opts.SetGate(p, g.ConditionType)
				}
			}
			return
		}
		select {
		case <-time.After(c.opts.Requeue):
		case <-c.ctx.Done():
			return
		}
	}
}

func containersReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.ContainersReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func hasGate(p *corev1.Pod) bool {
	for _, g := range p.Spec.ReadinessGates {
		if strings.HasPrefix(string(g.ConditionType), defaults.GatePrefix) {
			return true
		}
	}
	return false
}
