package kubelet

import (
	"context"
	"time"
)

// probe runs the readiness probe for one container run until ctx ends,
// like the kubelet's probe worker: a tick every periodSeconds from the
// start, ticks before initialDelaySeconds skipped, and the ready state
// flipped only after successThreshold consecutive successes or
// failureThreshold consecutive failures. Before the first flip the
// container is not ready. No probe: ready as soon as it runs.
func (p *Pod) probe(ctx context.Context, run *containerRun) {
	pr := p.container.ReadinessProbe
	if pr == nil {
		p.setReady(run, true)
		return
	}
	s := p.opts.Scale
	initialDelay := s.Seconds(int64(pr.InitialDelaySeconds))
	period := s.Seconds(int64(nonZero(pr.PeriodSeconds, defaultPeriodSeconds)))
	success := int(nonZero(pr.SuccessThreshold, defaultSuccessThreshold))
	failure := int(nonZero(pr.FailureThreshold, defaultFailureThreshold))

	tick := time.NewTicker(period)
	defer tick.Stop()
	var last *bool
	streak := 0
	for {
		if time.Since(run.started) >= initialDelay {
			ok := p.runProbe(ctx, pr) == nil
			if ctx.Err() != nil {
				return // the process is gone: this result means nothing
			}
			if last != nil && *last == ok {
				streak++
			} else {
				last, streak = &ok, 1
			}
			if (ok && streak >= success) || (!ok && streak >= failure) {
				p.setReady(run, ok)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Pod) setReady(run *containerRun, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setContainersReadyLocked(run, ready, time.Now())
}
