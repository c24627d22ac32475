// Package soaktest is the stand-in for nodes and a load balancer that soak's
// tests and bench/soak run against a real control plane before the lab's
// node agent exists: Pods drives the pods of a namespace to Ready (what a
// kubelet would report) so the real deployment controller carries a
// rollout through, and Backend is a real HTTP server on loopback that
// answers from the Ready pods, round robin, naming the pod (X-Served-By)
// and its VERSION env value (X-Version), as the demo API does.
//
// It is a stand-in, named as such: no container runs. What it lets soak's
// tests prove is soak's own part — RBAC, patching, rollout-status
// semantics, confirmation, attribution — against the real apiserver and
// controllers.
package soaktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/rollsafe/rollsafe/internal/controlplane"
)

// Pods marks every pod of a namespace Ready, and tracks which are.
type Pods struct {
	client    kubernetes.Interface
	namespace string

	// Hold stops marking new pods Ready: a rollout then never completes.
	// Release ends it.
	Hold atomic.Bool
	// LosePerRollout makes Backend fail this many requests with 502 each
	// time a pod of a new version turns Ready beside pods of another
	// version: a rollout that drops requests, on demand.
	LosePerRollout atomic.Int64

	ctx   context.Context
	store cache.Store

	mu      sync.Mutex
	ready   map[string]string // pod name → VERSION
	names   []string          // sorted keys of ready
	next    int
	toLose  atomic.Int64
	patched map[string]bool
}

// StartPods watches namespace and drives its pods until ctx ends.
func StartPods(ctx context.Context, client kubernetes.Interface, namespace string) (*Pods, error) {
	p := &Pods{client: client, namespace: namespace, ready: map[string]string{}, patched: map[string]bool{}, ctx: ctx}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.seen(ctx, o) },
		UpdateFunc: func(_, o any) { p.seen(ctx, o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if pod, ok := o.(*corev1.Pod); ok {
				p.set(pod.Name, "", false)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	p.store = inf.GetStore()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pods informer did not sync")
	}
	return p, nil
}

// Release ends Hold and marks the pods it held back Ready.
func (p *Pods) Release() {
	p.Hold.Store(false)
	for _, o := range p.store.List() {
		p.seen(p.ctx, o)
	}
}

func version(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "VERSION" {
				return e.Value
			}
		}
	}
	return ""
}

func isReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (p *Pods) seen(ctx context.Context, o any) {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		p.set(pod.Name, "", false)
		return
	}
	if isReady(pod) {
		p.set(pod.Name, version(pod), true)
		return
	}
	if p.Hold.Load() {
		return
	}
	p.mu.Lock()
	done := p.patched[pod.Name]
	p.patched[pod.Name] = true
	p.mu.Unlock()
	if done {
		return
	}
	// What a kubelet reports once the containers run and pass readiness.
	// Retried on conflict (the scheduler writes the pod too): a lost
	// update would leave the pod pending with no further event to retry on.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := p.client.CoreV1().Pods(p.namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		_, err = p.client.CoreV1().Pods(p.namespace).UpdateStatus(ctx, readyStatus(cur), metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		p.mu.Lock()
		delete(p.patched, pod.Name) // try again on the next event
		p.mu.Unlock()
	}
}

func readyStatus(pod *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	st := pod.DeepCopy()
	st.Status.Phase = corev1.PodRunning
	st.Status.StartTime = &now
	st.Status.PodIP = "127.0.0.1"
	st.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	st.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.Status.ContainerStatuses = append(st.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	return st
}

func (p *Pods) set(name, ver string, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, had := p.ready[name]
	if !ready {
		delete(p.ready, name)
	} else {
		if lose := p.LosePerRollout.Load(); !had && lose > 0 {
			for _, v := range p.ready {
				if v != ver {
					p.toLose.Add(lose)
					break
				}
			}
		}
		p.ready[name] = ver
	}
	p.names = p.names[:0]
	for n := range p.ready {
		p.names = append(p.names, n)
	}
	slices.Sort(p.names)
}

// pick returns the next Ready pod, round robin ("" when none).
func (p *Pods) pick() (name, ver string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.names) == 0 {
		return "", ""
	}
	p.next = (p.next + 1) % len(p.names)
	name = p.names[p.next]
	return name, p.ready[name]
}

// Backend is the load balancer stand-in: a loopback HTTP server.
type Backend struct {
	URL string
	srv *http.Server
}

// StartBackend serves from p's Ready pods on 127.0.0.1 until Close: 503
// when none is Ready (as an ALB with no registered target), 502 while p
// owes lost requests, else 200 with X-Served-By and X-Version.
func StartBackend(p *Pods) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Backend{URL: "http://" + ln.Addr().String() + "/", srv: &http.Server{ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.toLose.Load() > 0 && p.toLose.Add(-1) >= 0 {
				http.Error(w, "lost", http.StatusBadGateway)
				return
			}
			name, ver := p.pick()
			if name == "" {
				http.Error(w, "no ready pod", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("X-Served-By", name)
			w.Header().Set("X-Version", ver)
			fmt.Fprintf(w, "demo %s\n", ver)
		})}}
	go b.srv.Serve(ln)
	return b, nil
}

// Close stops the server.
func (b *Backend) Close() { b.srv.Close() }

// Deployment is a one-container Deployment labelled app=name whose pods
// carry VERSION=version, rolling one pod at a time.
func Deployment(name string, replicas int32, version string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "api", Image: "demo-api", Args: []string{"--version", version},
					Env: []corev1.EnvVar{{Name: "VERSION", Value: version}},
				}}},
			},
		},
	}
}

// Env is a namespace on a control plane with a Deployment "web" (VERSION=0),
// Pods driving it and a Backend in front.
type Env struct {
	Namespace string
	Admin     kubernetes.Interface
	Pods      *Pods
	Backend   *Backend
}

// Start makes a fresh namespace ns-<random> through admin and starts
// everything; Close deletes the namespace.
func Start(ctx context.Context, admin kubernetes.Interface, prefix string, replicas int32) (*Env, error) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	e := &Env{Namespace: prefix + "-" + hex.EncodeToString(suffix), Admin: admin}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	var err error
	if e.Pods, err = StartPods(ctx, admin, e.Namespace); err != nil {
		e.Close()
		return nil, err
	}
	if e.Backend, err = StartBackend(e.Pods); err != nil {
		e.Close()
		return nil, err
	}
	if _, err := admin.AppsV1().Deployments(e.Namespace).Create(ctx, Deployment("web", replicas, "0"), metav1.CreateOptions{}); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// ForTest starts an Env for t on the control plane controlplane.ForTest
// gives, in a namespace named for prefix. Everything stops when t ends.
func ForTest(t controlplane.TB, prefix string, replicas int32) (*controlplane.ControlPlane, *Env) {
	t.Helper()
	cp := controlplane.ForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	admin, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	e, err := Start(ctx, admin, prefix, replicas)
	if err != nil {
		t.Fatalf("soaktest.Start: %v", err)
	}
	t.Cleanup(e.Close)
	return cp, e
}

// Close stops the backend and deletes the namespace.
func (e *Env) Close() {
	if e.Backend != nil {
		e.Backend.Close()
	}
	e.Admin.CoreV1().Namespaces().Delete(context.Background(), e.Namespace, metav1.DeleteOptions{})
}
