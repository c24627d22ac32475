package lab

// A node leaving the load balancer while requests run through it: the event
// check's clb-connection-draining-off is about. On an instance topology the
// targets are the nodes, and a rollout deregisters none of them; what does
// is a change to the cluster's nodes.
//
// What makes the service controller (kubernetes/cloud-provider
// controllers/service/controller.go, the in-tree AWS provider's and
// cloud-provider-aws's) take a node out of a Classic ELB today:
//   - StableLoadBalancerNodeSet (KEP-3458, GA in 1.30): a node is no longer
//     removed when it turns NotReady or gets the cluster autoscaler's
//     ToBeDeletedByClusterAutoscaler taint; it stays until its Node is
//     deleted or labelled
//     node.kubernetes.io/exclude-from-external-load-balancers. An added or
//     deleted Node, a change of that label or of the providerID trigger a
//     sync (the informer's handlers, shouldSyncUpdatedNode). A Node with a
//     DeletionTimestamp or with the taint is filtered out
//     (stableNodeSetPredicates) only at a sync something else caused; the
//     code's comment says the tainted node's connections then do not drain.
//   - KubeProxyDrainingTerminatingNodes (KEP-3836, GA in 1.31) makes
//     kube-proxy's own /healthz (port 10256) fail on a node with that taint.
//     A Classic ELB never sees it: the provider health-checks the Service's
//     first NodePort over TCP (externalTrafficPolicy Cluster) or the
//     Service's health-check node port (Local), and KEP-3836 names AWS among
//     the clouds that do not point their check at kube-proxy.
//
// So the lab's event is a node labelled for exclusion (or its Node deleted)
// while it still runs: the provider deregisters the instance, the node's
// kube-proxy keeps forwarding the connections the ELB holds to it, and the
// node shuts down once the ELB reports the instance deregistered (the
// lab's choice, after what AWS says an Auto Scaling group attached to the
// ELB does: it waits for connection draining before it terminates an
// instance). What the ELB does then is AWS's
// (Configure connection draining for your Classic Load Balancer): with
// draining off it closes the connections to the instance at once and "any
// in-flight requests ... are not completed" (the stand-in's deregistration
// delay 0: deregistration_delay_cut); with draining on it stops sending new
// requests and keeps the existing connections open up to the timeout, then
// closes them. When each ELB node stops routing to the instance is not
// published for a Classic ELB: the stand-in applies the lab's P, as on the
// ALB; with draining off every ELB node forgets the instance at once.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/kubeproxy"
	"github.com/rollsafe/rollsafe/timeline"
)

// Reasons of the lab's node records (Kind event, Source lab).
const (
	ReasonNodeLeaving = "lab.NodeLeaving" // excluded: the load balancer deregisters it
	ReasonNodeJoined  = "lab.NodeJoined"  // the replacement, registered
	ReasonNodeLeft    = "lab.NodeLeft"    // deregistered and shut down
)

// nodeLeaveSupported says why s's node leave cannot run on t, if it cannot.
func (s Scenario) nodeLeaveSupported(t Topology) error {
	switch {
	case s.NodeLeave <= 0:
		return nil
	case !t.Instance:
		return fmt.Errorf("scenario %s: a node leaves the load balancer only on an instance topology (its targets are the nodes), not %s", s.Name, t.Name)
	case s.Policy == kubeproxy.PolicyLocal:
		// With Local the leaving node's pods would have to move with it
		// (evicted, rescheduled), which the lab does not replay.
		return fmt.Errorf("scenario %s: a node leaves the load balancer with externalTrafficPolicy Cluster only, not Local", s.Name)
	}
	return nil
}

// nodeLeave is one rollout round's node leave, running beside the rollout.
type nodeLeave struct {
	done chan struct{}
	err  error
}

// startNodeLeave starts this round's node leave when the scenario has one:
// NodeLeave after the rollout starts, the oldest node leaves and a new one
// joins in its place.
func (r *run) startNodeLeave(ctx context.Context) *nodeLeave {
	nl := &nodeLeave{done: make(chan struct{})}
	if r.s.NodeLeave <= 0 || r.nodes == nil {
		close(nl.done)
		return nl
	}
	go func() {
		defer close(nl.done)
		select {
		case <-time.After(r.scale.Of(r.s.NodeLeave)):
			nl.err = r.replaceNode(ctx)
		case <-ctx.Done():
		}
	}()
	return nl
}

// wait waits until the round's node has left and its replacement is
// healthy (or the run ended), and says what failed.
func (nl *nodeLeave) wait() error {
	<-nl.done
	return nl.err
}

// replaceNode deregisters the oldest node, registers a new one, shuts the
// old one down once the load balancer reports it unused (deregistration
// done: at once with draining off, after the draining timeout with it on)
// and waits for the new one's health checks to pass.
func (r *run) replaceNode(ctx context.Context) error {
	old, slot := r.nodes.oldest()
	r.nodeRecord(old, ReasonNodeLeaving)
	if err := r.lb.Deregister(targetOf(old)); err != nil {
		return fmt.Errorf("node leave: %w", err)
	}
	repl, err := r.nodes.join(r, slot)
	if err != nil {
		return fmt.Errorf("node leave: replacement node: %w", err)
	}
	if err := r.lb.Register(targetOf(repl)); err != nil {
		return fmt.Errorf("node leave: %w", err)
	}
	r.nodeRecord(repl, ReasonNodeJoined)
	r.awaitTarget(ctx, targetOf(old), alb.StateUnused, 0)
	if err := r.nodes.remove(old); err != nil {
		return fmt.Errorf("node leave: %s: %w", old.Name(), err)
	}
	r.nodeRecord(old, ReasonNodeLeft)
	hc := r.lbf.hc
	r.awaitTarget(ctx, targetOf(repl), alb.StateHealthy, hc.Interval*time.Duration(hc.HealthyThreshold+2))
	return nil
}

// awaitTarget waits until t is in state, ctx ends, or (bound > 0) bound
// has passed: a node whose health checks never pass does not hold the
// run up.
func (r *run) awaitTarget(ctx context.Context, t alb.Target, state alb.State, bound time.Duration) {
	var deadline <-chan time.Time
	if bound > 0 {
		deadline = time.After(bound)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.lb.HealthOf(t).State != state {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-tick.C:
		}
	}
}

// nodeRecord marks a node's leave or join in the ground truth.
func (r *run) nodeRecord(n *kubeproxy.Node, reason string) {
	r.emit(&timeline.Record{Kind: timeline.KindEvent, Time: time.Now(), Source: "lab", Object: n.Name(),
		Reason: reason, Attrs: map[string]string{"target": n.Addr()}})
}

// oldest is the node that has been up longest, and its slot (1-based: its
// kube-proxy lag, which its replacement takes over).
func (ln *labNodes) oldest() (*kubeproxy.Node, int) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	n := ln.nodes[0]
	return n, ln.slot[n]
}

// join starts the next lab node on the NodePort, in slot, and hands it
// the last endpoint snapshot, as a new node's kube-proxy lists the
// EndpointSlices when it starts.
func (ln *labNodes) join(r *run, slot int) (*kubeproxy.Node, error) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	n, err := ln.start(r, ln.count+1, slot, ln.port, 0)
	if err != nil {
		return nil, err
	}
	ln.nodes = append(ln.nodes, n)
	ln.byAddr[n.Addr()] = n
	n.Update(ln.last)
	return n, nil
}

// remove shuts node n down: it no longer gets endpoint changes, and its
// connections close.
func (ln *labNodes) remove(n *kubeproxy.Node) error {
	ln.mu.Lock()
	ln.nodes = slices.DeleteFunc(ln.nodes, func(x *kubeproxy.Node) bool { return x == n })
	delete(ln.byAddr, n.Addr())
	ln.gone[n.Addr()] = true
	ln.mu.Unlock()
	return n.Close()
}

// The clb-connection-draining-off pair's own settings, spec time (the
// lab's choices; the numbers they derive from are check's defaults).
const (
	// scaleInRequest is the pair's slow request: check's default longest
	// request (--max-request-duration), so check judges the pair's
	// manifests by the requests the lab sends.
	scaleInRequest = defaults.MaxRequestDuration
	// scaleInLeave is when the node leaves, after the rollout starts: by
	// then the slow stream, which starts with the load, has requests in
	// flight through every node.
	scaleInLeave = 30 * time.Second
	// scaleInDraining is the fix check gives for requests of
	// scaleInRequest: draining on for P + the longest request + the
	// margin, with check's P (17 s), so 49 s. It outlasts the lab's P
	// (10 s) plus a slow request started just before the last ELB node
	// stopped routing to the leaving node.
	scaleInDraining = defaults.Propagation + scaleInRequest + defaults.Margin
)

// clbScaleIn is the pair for check's clb-connection-draining-off, built
// for the clb topology: drain (drain-past-idle-timeout, which loses
// nothing to the rollouts on clb) with 30 s requests in flight and a node
// leaving the ELB in every round, connection draining off (the provider's
// default) and on as check's fix sets it. graceful's shutdown timeout
// outlasts a slow request, so one started on an old pod late in its drain
// still finishes: only the node's leave can cut a request.
func clbScaleIn(drain Scenario) []Scenario {
	clb, _ := LookupTopology("clb")
	off := drain
	off.Name = "clb-scale-in"
	off.Description = "a node leaves the Classic ELB in every rollout while 30s requests run through it; connection draining off (the provider's default)"
	off.SlowRequest = scaleInRequest
	off.NodeLeave = scaleInLeave
	off.App.ShutdownTimeout = scaleInRequest + 5*time.Second
	off.Grace = off.App.DrainDelay + off.App.ShutdownTimeout + 10*time.Second
	off = off.On(clb) // draining off

	on := off
	on.Name = "clb-scale-in-draining"
	on.Description = "clb-scale-in with connection draining on for 49s (check's fix for 30s requests): the leaving node's requests finish"
	on.DeregistrationDelay = scaleInDraining
	return []Scenario{off, on}
}
