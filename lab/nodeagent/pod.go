package nodeagent

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rollsafe/rollsafe/lab/kubelet"
)

// minStopWindow is the kubelet's one-off 2 s extension, used when the API
// asks for a shorter grace period than the pod's spec (see requestDeletion).
const minStopWindow = 2 * time.Second

// podRun is one pod this node runs: its process (kp) and the worker that
// writes its status to the API.
type podRun struct {
	a         *Agent
	uid       types.UID
	ns, name  string
	container string
	ip        netip.Addr
	logPath   string       // the pod's stdout and stderr (see logs.go)
	logFile   *os.File     // open for the pod's processes until it is forgotten
	kp        *kubelet.Pod // nil when the container could not be started

	mu       sync.Mutex
	dirty    bool // a change was reported and not yet written
	final    bool // the last change (the pod is gone) was reported
	deleting bool // the API asked for the pod's deletion
	cut      *time.Timer
	wake     chan struct{}
}

// run allocates an address and starts the pod's process.
func (a *Agent) run(pod *corev1.Pod) *podRun {
	r := &podRun{a: a, uid: pod.UID, ns: pod.Namespace, name: pod.Name, wake: make(chan struct{}, 1)}
	if len(pod.Spec.Containers) > 0 {
		r.container = pod.Spec.Containers[0].Name
	}
	out, logErr := r.openLog() // before the log server can find r
	a.mu.Lock()
	a.pods[pod.UID] = r
	a.workers.Add(1)
	a.mu.Unlock()

	ip, err := a.ipam.Allocate()
	if err == nil {
		if err = checkLocal(ip); err != nil {
			a.ipam.Release(ip)
		}
	}
	if err == nil {
		err = logErr
	}
	var kp *kubelet.Pod
	if err == nil {
		kp, err = kubelet.Start(a.podCtx, kubelet.Options{
			Pod: pod, IP: ip.String(), Port: a.opts.Port, Command: a.opts.Command,
			Scale: a.opts.Scale, Sink: a.rec.Write, OnStatus: r.onStatus,
			Stdout: out, Stderr: out,
		})
		if err != nil {
			a.ipam.Release(ip)
		}
	}
	if err != nil {
		a.warn(pod.Namespace+"/"+pod.Name, err.Error())
		go r.startFailed(err)
		return r
	}
	a.mu.Lock() // the log server reads kp
	r.ip, r.kp = ip, kp
	a.mu.Unlock()
	go r.work()
	return r
}

// openLog creates the pod's log file and returns where its output goes:
// the file itself when nothing else wants it (the child then writes it
// directly), else the file and Options.PodOutput.
func (r *podRun) openLog() (io.Writer, error) {
	f, err := r.a.logs.create(string(r.uid))
	if err != nil {
		return nil, err
	}
	r.logFile, r.logPath = f, f.Name()
	if r.a.opts.PodOutput == nil {
		return f, nil
	}
	return io.MultiWriter(f, r.a.opts.PodOutput), nil
}

// onStatus is the kubelet's report of a change: mark the status dirty and
// wake the worker, which writes the pod's current status. Writing the
// current status rather than the change's snapshot coalesces bursts, and
// carries what the kubelet updates without a change of its own (the Ready
// condition's reason turning ReadinessGatesNotReady in the same step as
// ContainersReady, after that change's snapshot was taken).
func (r *podRun) onStatus(_ *corev1.Pod, change kubelet.State) {
	r.mu.Lock()
	r.dirty = true
	if change == kubelet.StateDeleted {
		r.final = true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// work writes statuses until the pod is gone, then finishes its deletion
// and frees its address.
func (r *podRun) work() {
	defer r.a.workers.Done()
	for {
		<-r.wake
		r.mu.Lock()
		dirty, final := r.dirty, r.final
		r.dirty = false
		r.mu.Unlock()
		if dirty {
			r.patch(r.kp.Status())
		}
		if final {
			break
		}
	}
	r.mu.Lock()
	deleting := r.deleting
	if r.cut != nil {
		r.cut.Stop()
	}
	r.mu.Unlock()
	if deleting {
		r.a.deleteObject(r.ns, r.name, r.uid)
	}
	r.a.forget(r)
}

// patch writes snap's status, retrying transient errors until it lands,
// a newer change supersedes it or the agent is done.
func (r *podRun) patch(snap *corev1.Pod) {
	if to := r.a.opts.PodAddr; to != nil && snap.Status.PodIP != "" {
		snap = snap.DeepCopy()
		ip := to(netip.MustParseAddr(snap.Status.PodIP)).String()
		snap.Status.PodIP, snap.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	body, err := statusPatch(snap)
	if err != nil {
		r.a.warn(r.ns+"/"+r.name, "status: "+err.Error())
		return
	}
	r.a.patchPodStatus(r.ns, r.name, body, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.dirty
	})
}

// startFailed reports a container that could not start, and keeps the pod
// known until it is deleted.
func (r *podRun) startFailed(err error) {
	defer r.a.workers.Done()
	body, perr := startFailedPatch(err, time.Now(), r.container)
	if perr == nil {
		r.a.patchPodStatus(r.ns, r.name, body, func() bool { return false })
	}
}

// sync brings the running pod in line with the API object: readiness-gate
// conditions set by other clients, and deletion.
func (r *podRun) sync(pod *corev1.Pod) {
	if r.kp == nil {
		if pod.DeletionTimestamp != nil {
			r.a.deleteObject(r.ns, r.name, r.uid)
			r.a.forget(r)
		}
		return
	}
	for t, s := range gateChanges(pod, r.kp.Status()) {
		if err := r.kp.SetCondition(t, s); err != nil && !errors.Is(err, kubelet.ErrGone) {
			r.a.warn(r.ns+"/"+r.name, err.Error())
		}
	}
	if pod.DeletionTimestamp != nil {
		r.requestDeletion(pod)
	}
}

// gone: the object vanished while the process runs.
func (r *podRun) gone(pod *corev1.Pod) {
	if r.kp == nil {
		r.a.forget(r)
		return
	}
	r.requestDeletion(pod)
}

// requestDeletion starts graceful termination once. The kubelet package
// takes the grace period from the pod's spec; when the API asks for less
// (kubectl delete --grace-period, a forced deletion), the process is killed
// at that shorter deadline plus the kubelet's 2 s extension instead.
func (r *podRun) requestDeletion(pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleting {
		return
	}
	r.deleting = true
	r.kp.Delete()
	spec := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		spec = *s
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g < spec {
		scale := r.a.opts.Scale
		r.cut = time.AfterFunc(scale.Seconds(*g)+scale.Of(minStopWindow), r.kp.Close)
	}
}

// patchPodStatus applies a strategic-merge patch to pods/status. Transient
// errors are retried with back-off until superseded() says a newer status
// waits, the agent's API context ends, or the pod is gone; errors that a
// retry cannot fix are recorded once.
func (a *Agent) patchPodStatus(ns, name string, body []byte, superseded func() bool) {
	backoff := 50 * time.Millisecond
	for {
		_, err := a.cs.CoreV1().Pods(ns).Patch(a.apiCtx, name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
		switch {
		case err == nil, apierrors.IsNotFound(err), a.apiCtx.Err() != nil:
			return
		case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err):
			a.warn(ns+"/"+name, "status: "+err.Error())
			return
		}
		if superseded() {
			return
		}
		select {
		case <-time.After(backoff):
		case <-a.apiCtx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// deleteObject finishes a graceful deletion: the process is gone, so the
// object goes with grace period 0. The UID precondition keeps a new pod of
// the same name (a StatefulSet's) safe.
func (a *Agent) deleteObject(ns, name string, uid types.UID) {
	zero := int64(0)
	err := a.cs.CoreV1().Pods(ns).Delete(a.apiCtx, name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && a.apiCtx.Err() == nil {
		a.warn(ns+"/"+name, "delete: "+err.Error())
	}
}
