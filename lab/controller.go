package lab

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/alb"
	"github.com/rollsafe/rollsafe/cluster"
	"github.com/rollsafe/rollsafe/kubelet"
)

// gatePrefix marks the readiness gates the controller manages.
const gatePrefix = "target-health.elbv2.k8s.aws/"

// controller is the AWS Load Balancer Controller stand-in for ip targets:
//   - a pod whose containers are ready is registered (with a readiness gate
//     the controller registers pods before they are Ready — that is the
//     point of the gate; without one, Ready is ContainersReady);
//   - a terminating pod is deregistered;
//   - with a gate, target health is re-checked every requeue period and the
//     gate condition set True once the target is healthy.
//
// Each ELBv2 call happens after the reconcile lag.
type controller struct {
	ctx     context.Context
	lb      *alb.LB
	cl      *cluster.Cluster
	port    int
	gate    bool
	lag     time.Duration
	requeue time.Duration

	mu      sync.Mutex
	byIP    map[string]*podFacts // what the lab knows of each pod, for attribution
	started sync.WaitGroup
}

// podFacts is the process history of one pod, by IP, for attribution.
type podFacts struct {
	name        string
	terminating time.Time // deletion started
	sigterm     time.Time
	exited      time.Time
	killed      time.Time // SIGKILL sent at the grace deadline
}

func newController(ctx context.Context, lb *alb.LB, s Scenario, scale kubelet.TimeScale) *controller {
	return &controller{
		ctx: ctx, lb: lb, port: AppPort, gate: s.ReadinessGate,
		lag: scale.Of(s.ControllerLag), requeue: scale.Of(s.GateRequeue),
		byIP: map[string]*podFacts{},
	}
}

// onPod is cluster.Options.OnPod.
func (c *controller) onPod(ev cluster.PodEvent) {
	ip := ev.Pod.Status.PodIP
	now := time.Now()
	c.record(ip, ev.Pod.Name, ev.Change, now)
	target := alb.Target{IP: ip, Port: c.port}
	switch ev.Change {
	case kubelet.StateContainersReady:
		c.after(func() {
			c.lb.Register(target)
			if c.gate {
				c.watchGate(ev.Pod.Name, target)
			}
		})
	case kubelet.StateTerminating:
		c.after(func() { c.lb.Deregister(target) })
	}
}

func (c *controller) record(ip, name string, change kubelet.State, at time.Time) {
	if ip == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.byIP[ip]
	if f == nil || (f.name != name && change == kubelet.StateRunning) {
		f = &podFacts{name: name}
		c.byIP[ip] = f
	}
	switch change {
	case kubelet.StateTerminating:
		f.terminating = at
	case kubelet.StateSIGTERM:
		f.sigterm = at
	case kubelet.StateExited:
		f.exited = at
	case kubelet.StateKilled:
		f.killed = at
	}
}

// facts returns a copy of what is known of the pod at ip.
func (c *controller) facts(ip string) (podFacts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.byIP[ip]
	if !ok {
		return podFacts{}, false
	}
	return *f, true
}

// after runs fn once the reconcile lag has passed, unless the lab stops.
func (c *controller) after(fn func()) {
	c.started.Add(1)
	go func() {
		defer c.started.Done()
		select {
		case <-time.After(c.lag):
			fn()
		case <-c.ctx.Done():
		}
	}()
}

// watchGate polls target health every requeue period, as the controller's
// readiness-gate reconciler does, and sets the gate once healthy. It stops
// when the pod is gone or starts terminating.
func (c *controller) watchGate(pod string, t alb.Target) {
	for {
		p, ok := c.cl.Pod(pod)
		if !ok || p.Status().DeletionTimestamp != nil {
			return
		}
		if c.lb.HealthOf(t).State == alb.StateHealthy {
			for _, g := range p.Status().Spec.ReadinessGates {
				if strings.HasPrefix(string(g.ConditionType), gatePrefix) {
					c.cl.SetCondition(pod, g.ConditionType, corev1.ConditionTrue)
				}
			}
			return
		}
		select {
		case <-time.After(c.requeue):
		case <-c.ctx.Done():
			return
		}
	}
}

// wait returns when every pending controller action has run or given up.
func (c *controller) wait() { c.started.Wait() }

func splitTarget(t string) (ip string, port int, err error) {
	h, p, err := net.SplitHostPort(t)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	return h, port, err
}
