package fleet

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations the Job controller sets on an Indexed Job's pods.
const (
	jobNameLabel    = "batch.kubernetes.io/job-name"
	indexAnnotation = "batch.kubernetes.io/job-completion-index"
	// IndexVar is the environment variable the Job controller gives each
	// pod's containers: the worker's index. Options.Command refers to it as
	// "$(JOB_COMPLETION_INDEX)", which Kubernetes expands.
	IndexVar = "JOB_COMPLETION_INDEX"
	// RunLabel marks the Job and its pods with the run's id.
	RunLabel      = "rollsafe.dev/probe-run"
	containerName = "probe"
	orphanTTL     = time.Hour
)

// job is the Indexed Job of opts.Workers pods. Each index runs once:
// backoffLimitPerIndex 0 fails an index on its first failure without
// retrying it (a retry would send its slots twice), and maxFailedIndexes
// = Workers keeps the other workers running when one fails — with a
// plain backoffLimit 0 the Job controller would end them all.
func job(opts *Options, run string) *batchv1.Job {
	n := int32(opts.Workers)
	zero := int32(0)
	mode := batchv1.IndexedCompletion
	grace := opts.GracePeriod
	labels := map[string]string{RunLabel: run}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	no := false
	// Run deletes the Job however it ends; this is for a coordinator that
	// could not (SIGKILL, lost network): the finished Job goes by itself.
	ttl := int32(orphanTTL / time.Second)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rollsafe-probe-", Namespace: opts.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			Completions: &n, Parallelism: &n, CompletionMode: &mode,
			BackoffLimitPerIndex: &zero, MaxFailedIndexes: &n, TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					AutomountServiceAccountToken:  &no, // workers only send HTTP
					TerminationGracePeriodSeconds: &grace,
					NodeSelector:                  opts.NodeSelector,
					// Spread the workers over the nodes: many source
					// addresses and paths to the load balancer's nodes.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{RunLabel: run}},
					}},
					Containers: []corev1.Container{{
						Name: containerName, Image: opts.Image, Command: opts.Command,
						ImagePullPolicy: corev1.PullIfNotPresent,
					}},
				},
			},
		},
	}
}

// podIndex is the worker index of one of the Job's pods, or -1.
func podIndex(p *corev1.Pod) int {
	i, err := strconv.Atoi(p.Annotations[indexAnnotation])
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// exitOf describes how a pod's container ended ("" while it runs).
func exitOf(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			if t.Signal != 0 {
				return fmt.Sprintf("exit %d (signal %d)", t.ExitCode, t.Signal)
			}
			return fmt.Sprintf("exit %d", t.ExitCode)
		}
	}
	return ""
}

// waitingReason says why a pod's container has not started, if it says.
func waitingReason(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			if w.Message != "" {
				return w.Reason + ": " + w.Message
			}
			return w.Reason
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
			return "not scheduled: " + c.Message
		}
	}
	return ""
}
