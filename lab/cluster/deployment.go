package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/rollsafe/rollsafe/lab/kubelet"
)

// ErrSuperseded is returned by Rollout when a newer template replaced its own
// before it completed.
var ErrSuperseded = errors.New("rollout superseded by a newer template")

// ErrProgressDeadline is returned by Rollout when progressDeadlineSeconds
// passed without a pod becoming available or an old one going away.
var ErrProgressDeadline = errors.New("progress deadline exceeded")

// Deployment is one Deployment and its ReplicaSets.
type Deployment struct {
	c    *Cluster
	name string

	mu       sync.Mutex
	spec     *appsv1.Deployment // Spec.Template is the current revision
	hash     string             // pod-template hash of spec.Spec.Template
	sets     []*replicaSet      // oldest first
	err      error              // a pod could not start: the rollout cannot go on
	changed  chan struct{}      // closed and replaced after every change
	progress time.Time          // last time the rollout moved
	timer    *time.Timer        // wakes the controller when a pod becomes available

	wake chan struct{}
}

type replicaSet struct {
	hash     string
	template corev1.PodTemplateSpec
	replicas int
	pods     map[string]*podState
}

type podState struct {
	kp          *kubelet.Pod
	created     time.Time
	ready       bool
	readySince  time.Time
	terminating bool
	finished    bool // phase Succeeded/Failed: not active, replaced
}

// Status is the deployment's status as the controller sees it.
type Status struct {
	appsv1.DeploymentStatus
	// Revision is the pod-template hash of the current template.
	Revision string
	// Complete: every replica updated and available, no old pod left
	// that is not terminating.
	Complete bool
}

func validateDeployment(d *appsv1.Deployment) error {
	if d == nil || d.Name == "" {
		return errors.New("deployment: no name")
	}
	if r := d.Spec.Replicas; r != nil && *r < 0 {
		return fmt.Errorf("deployment %s: replicas %d must not be negative", d.Name, *r)
	}
	if d.Spec.MinReadySeconds < 0 {
		return fmt.Errorf("deployment %s: minReadySeconds must not be negative", d.Name)
	}
	switch d.Spec.Strategy.Type {
	case "", appsv1.RollingUpdateDeploymentStrategyType:
		ru := d.Spec.Strategy.RollingUpdate
		if ru != nil && isZero(ru.MaxSurge) && isZero(ru.MaxUnavailable) {
			return fmt.Errorf("deployment %s: strategy.rollingUpdate.maxUnavailable may not be 0 when maxSurge is 0", d.Name)
		}
		if _, _, err := fenceposts(ru, int(replicas(d))); err != nil {
			return fmt.Errorf("deployment %s: strategy.rollingUpdate.%w", d.Name, err)
		}
	case appsv1.RecreateDeploymentStrategyType:
	default:
		return fmt.Errorf("deployment %s: strategy.type %q is not RollingUpdate or Recreate", d.Name, d.Spec.Strategy.Type)
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		return fmt.Errorf("deployment %s: pod template has %d containers; the lab runs exactly one", d.Name, n)
	}
	return nil
}

func isZero(v *intstr.IntOrString) bool {
	return v != nil && ((v.Type == intstr.Int && v.IntVal == 0) || (v.Type == intstr.String && v.StrVal == "0%"))
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func newDeployment(c *Cluster, d *appsv1.Deployment) *Deployment {
	dep := &Deployment{c: c, name: d.Name, spec: d, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), progress: time.Now()}
	dep.hash = templateHash(&d.Spec.Template)
	return dep
}

// templateHash names a revision as Kubernetes does: an FNV-32a hash of the
// template, encoded with the alphabet that avoids vowels and look-alikes.
// (Kubernetes hashes a spew dump of the object; we hash its JSON, so the
// values differ from a real cluster's, the form does not.)
func templateHash(t *corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// Rollout replaces the pod template and waits until the rollout is
// complete, ctx ends, a newer Rollout supersedes it, a pod cannot start,
// or progressDeadlineSeconds passes without progress.
func (d *Deployment) Rollout(ctx context.Context, template corev1.PodTemplateSpec) error {
	if n := len(template.Spec.Containers); n != 1 {
		return fmt.Errorf("deployment %s: pod template has %d containers; the lab runs exactly one", d.name, n)
	}
	d.mu.Lock()
	d.spec.Spec.Template = *template.DeepCopy()
	d.hash = templateHash(&d.spec.Spec.Template)
	d.progress = time.Now()
	hash := d.hash
	d.mu.Unlock()
	d.kick()
	return d.wait(ctx, hash)
}

// WaitComplete waits until the current revision's rollout is complete (for
// example the first one, after CreateDeployment).
func (d *Deployment) WaitComplete(ctx context.Context) error {
	d.mu.Lock()
	hash := d.hash
	d.mu.Unlock()
	return d.wait(ctx, hash)
}

func (d *Deployment) wait(ctx context.Context, hash string) error {
	deadline := d.c.opts.Scale.Seconds(int64(d.progressDeadline()))
	for {
		d.mu.Lock()
		st, err, changed, since := d.statusLocked(time.Now()), d.err, d.changed, time.Since(d.progress)
		d.mu.Unlock()
		switch {
		case err != nil:
			return err
		case st.Revision != hash:
			return ErrSuperseded
		case st.Complete:
			return nil
		case since >= deadline:
			return fmt.Errorf("deployment %s: %w (%v)", d.name, ErrProgressDeadline, deadline)
		}
		t := time.NewTimer(deadline - since)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-d.c.ctx.Done():
			t.Stop()
			return fmt.Errorf("deployment %s: cluster closed", d.name)
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

func (d *Deployment) progressDeadline() int32 {
	if p := d.spec.Spec.ProgressDeadlineSeconds; p != nil {
		return *p
	}
	return 600
}

// Status returns the current status.
func (d *Deployment) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statusLocked(time.Now())
}

func (d *Deployment) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// loop is the controller: one sync per wake-up, like a work queue with one key.
func (d *Deployment) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.mu.Lock()
			if d.timer != nil {
				d.timer.Stop()
			}
			d.mu.Unlock()
			return
		case <-d.wake:
		}
		d.sync(ctx)
	}
}

// sync brings the ReplicaSets one step closer to the spec, then makes
// every ReplicaSet's pods match its replica count.
func (d *Deployment) sync(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ctx.Err() != nil || d.err != nil {
		return
	}
	now := time.Now()
	newRS := d.newReplicaSetLocked()
	if d.spec.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		d.recreateLocked(newRS)
	} else {
		d.rollingLocked(newRS, now)
	}
	for _, rs := range d.sets {
		if err := d.reconcilePodsLocked(rs); err != nil {
			d.err = err
			break
		}
	}
	d.scheduleAvailabilityLocked(now)
	d.notifyLocked()
}

func (d *Deployment) newReplicaSetLocked() *replicaSet {
	for _, rs := range d.sets {
		if rs.hash == d.hash {
			// A template seen before (a rollback) reuses its ReplicaSet;
			// it becomes the newest.
			d.sets = append(removeRS(d.sets, rs), rs)
			return rs
		}
	}
	rs := &replicaSet{hash: d.hash, template: *d.spec.Spec.Template.DeepCopy(), pods: map[string]*podState{}}
	d.sets = append(d.sets, rs)
	return rs
}

func removeRS(sets []*replicaSet, x *replicaSet) []*replicaSet {
	out := sets[:0:0]
	for _, rs := range sets {
		if rs != x {
			out = append(out, rs)
		}
	}
	return out
}

// rollingLocked is rolloutRolling: reconcileNewReplicaSet then
// reconcileOldReplicaSets.
func (d *Deployment) rollingLocked(newRS *replicaSet, now time.Time) {
	want := int(replicas(d.spec))
	surge, maxUnavailable, _ := fenceposts(d.spec.Spec.Strategy.RollingUpdate, want) // validated at creation
	minReady := d.minReady()

	// Scale up the new ReplicaSet within replicas+maxSurge (NewRSNewReplicas).
	switch {
	case newRS.replicas > want:
		newRS.replicas = want
	case newRS.replicas < want:
		if total := d.specReplicasLocked(); total < want+surge {
			newRS.replicas += min(want+surge-total, want-newRS.replicas)
		}
	}

	old := d.oldLocked(newRS)
	if sumReplicas(old) == 0 {
		return
	}
	minAvailable := want - maxUnavailable
	newUnavailable := newRS.replicas - newRS.available(now, minReady)
	maxScaledDown := d.specReplicasLocked() - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return
	}
	// Old pods that are not available do not count towards availability:
	// remove them first (cleanupUnhealthyReplicas).
	scaled := 0
	for _, rs := range old {
		if scaled >= maxScaledDown {
			break
		}
		if unhealthy := rs.replicas - rs.available(now, minReady); unhealthy > 0 && rs.replicas > 0 {
			n := min(maxScaledDown-scaled, unhealthy)
			rs.replicas -= n
			scaled += n
		}
	}
	// Then scale down while availability stays above minAvailable
	// (scaleDownOldReplicaSetsForRollingUpdate).
	available := 0
	for _, rs := range d.sets {
		available += rs.available(now, minReady)
	}
	budget := available - minAvailable
	for _, rs := range old {
		if budget <= 0 {
			break
		}
		n := min(rs.replicas, budget)
		rs.replicas -= n
		budget -= n
	}
}

// recreateLocked: every old pod gone before any new pod exists.
func (d *Deployment) recreateLocked(newRS *replicaSet) {
	old := d.oldLocked(newRS)
	for _, rs := range old {
		rs.replicas = 0
	}
	for _, rs := range old {
		if len(rs.pods) > 0 { // terminating or not, still there
			return
		}
	}
	newRS.replicas = int(replicas(d.spec))
}

func (d *Deployment) oldLocked(newRS *replicaSet) []*replicaSet {
	var old []*replicaSet
	for _, rs := range d.sets {
		if rs != newRS {
			old = append(old, rs)
		}
	}
	return old
}

func (d *Deployment) specReplicasLocked() int { return sumReplicas(d.sets) }

func sumReplicas(sets []*replicaSet) int {
	n := 0
	for _, rs := range sets {
		n += rs.replicas
	}
	return n
}

func (d *Deployment) minReady() time.Duration {
	return d.c.opts.Scale.Seconds(int64(d.spec.Spec.MinReadySeconds))
}

// available counts active pods Ready for at least minReady.
func (rs *replicaSet) available(now time.Time, minReady time.Duration) int {
	n := 0
	for _, p := range rs.pods {
		if p.active() && p.ready && !now.Before(p.readySince.Add(minReady)) {
			n++
		}
	}
	return n
}

func (p *podState) active() bool { return !p.terminating && !p.finished }

// reconcilePodsLocked is the ReplicaSet controller: create or delete pods
// until the active ones match replicas.
func (d *Deployment) reconcilePodsLocked(rs *replicaSet) error {
	var active []*podState
	for _, p := range rs.pods {
		if p.active() {
			active = append(active, p)
		}
	}
	for i := len(active); i < rs.replicas; i++ {
		if err := d.createPodLocked(rs); err != nil {
			return err
		}
		d.progress = time.Now()
	}
	if extra := len(active) - rs.replicas; extra > 0 {
		sort.Slice(active, func(i, j int) bool { return deleteFirst(active[i], active[j]) })
		for _, p := range active[:extra] {
			p.terminating = true // counted as gone from now on, as a pod with a deletionTimestamp
			p.kp.Delete()
			d.progress = time.Now()
		}
	}
	return nil
}

// deleteFirst ranks pods for scale-down like the ReplicaSet controller's
// ActivePods: not ready before ready, ready more recently before longer,
// newer before older.
func deleteFirst(a, b *podState) bool {
	if a.ready != b.ready {
		return !a.ready
	}
	if a.ready && !a.readySince.Equal(b.readySince) {
		return a.readySince.After(b.readySince)
	}
	return a.created.After(b.created)
}

func (d *Deployment) createPodLocked(rs *replicaSet) error {
	rsName := d.name + "-" + rs.hash
	name := rsName + "-" + rand.String(5)
	for d.c.nameTaken(name) || rs.pods[name] != nil {
		name = rsName + "-" + rand.String(5)
	}
	pod := &corev1.Pod{
		ObjectMeta: *rs.template.ObjectMeta.DeepCopy(),
		Spec:       *rs.template.Spec.DeepCopy(),
	}
	pod.Name, pod.GenerateName = name, rsName+"-"
	pod.Namespace = d.spec.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = rs.hash
	ctrl := true
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rsName, Controller: &ctrl}}
	pod.CreationTimestamp = metav1.Now()

	ps := &podState{created: time.Now()}
	rs.pods[name] = ps
	kp, err := d.c.startPod(pod, func(snap *corev1.Pod, change kubelet.State) { d.observe(rs, name, snap, change) })
	if err != nil {
		delete(rs.pods, name)
		return fmt.Errorf("deployment %s: %w", d.name, err)
	}
	ps.kp = kp
	return nil
}

// observe folds a pod change into the controller's view and wakes it.
func (d *Deployment) observe(rs *replicaSet, name string, snap *corev1.Pod, change kubelet.State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := rs.pods[name]
	if p == nil {
		return
	}
	switch change {
	case kubelet.StateDeleted:
		delete(rs.pods, name)
		d.progress = time.Now()
	case kubelet.StateTerminating:
		p.terminating = true
	case kubelet.StateSucceeded, kubelet.StateFailed:
		p.finished = true
		p.kp.Delete() // an exited pod frees its place; the ReplicaSet replaces it
	}
	wasReady := p.ready
	p.ready, p.readySince = false, time.Time{}
	for _, c := range snap.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			p.ready, p.readySince = true, c.LastTransitionTime.Time
		}
	}
	if p.ready && !wasReady {
		d.progress = time.Now()
	}
	d.kick()
	d.notifyLocked()
}

// scheduleAvailabilityLocked wakes the controller when the next Ready pod
// has been Ready for minReadySeconds (the controller's requeue-after).
func (d *Deployment) scheduleAvailabilityLocked(now time.Time) {
	minReady := d.minReady()
	var next time.Time
	for _, rs := range d.sets {
		for _, p := range rs.pods {
			if at := p.readySince.Add(minReady); p.active() && p.ready && at.After(now) && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	if next.IsZero() {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timer = time.AfterFunc(next.Sub(now), d.kick)
}

func (d *Deployment) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Deployment) statusLocked(now time.Time) Status {
	minReady := d.minReady()
	want := int32(replicas(d.spec))
	var st Status
	st.Revision = d.hash
	var terminating int32
	oldActive := 0
	for _, rs := range d.sets {
		for _, p := range rs.pods {
			if !p.active() {
				if p.terminating {
					terminating++
				}
				continue
			}
			st.Replicas++
			if p.ready {
				st.ReadyReplicas++
			}
			if p.ready && !now.Before(p.readySince.Add(minReady)) {
				st.AvailableReplicas++
			}
			if rs.hash == d.hash {
				st.UpdatedReplicas++
			} else {
				oldActive++
			}
		}
	}
	st.TerminatingReplicas = &terminating
	st.UnavailableReplicas = max(0, want-st.AvailableReplicas)
	st.ObservedGeneration = d.spec.Generation
	st.Complete = st.UpdatedReplicas == want && st.AvailableReplicas == want && st.Replicas == want && oldActive == 0
	return st
}

// PodNames lists the deployment's pods that are not terminating, newest
// revision first, for logs and tests.
func (d *Deployment) PodNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for i := len(d.sets) - 1; i >= 0; i-- {
		names := make([]string, 0, len(d.sets[i].pods))
		for n, p := range d.sets[i].pods {
			if p.active() {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out
}

// Name is the deployment's name.
func (d *Deployment) Name() string { return d.name }
