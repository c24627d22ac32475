package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/observe/elbv2"
	"github.com/rollsafe/rollsafe/observe/kube"
	"github.com/rollsafe/rollsafe/timeline"
)

// observeOptions are the flags that record the cluster and the target group
// beside the requests.
type observeOptions struct {
	kube     bool
	selector string
	flags    *cmdutil.KubeFlags

	targetGroupARN string
	awsEndpoint    string
	region         string
	pollInterval   time.Duration

	// fleet: --kube names the cluster the workers run in (--workers); pods
	// are watched only when --selector says which.
	fleet bool
}

func (o *observeOptions) any() bool {
	return o.targetGroupARN != "" || (o.kube && (!o.fleet || o.selector != ""))
}

// check refuses flag combinations before anything is contacted.
func (o *observeOptions) check(record string) error {
	if !o.kube {
		if ns := o.flags.Namespace(); ns != "" {
			// -n was --requests before it meant the namespace, as in kubectl.
			return cmdutil.UsageErrorf("--namespace (-n) %s: needs --kube; the number of requests is --requests", ns)
		}
		if given := o.flags.Given(); len(given) > 0 {
			return cmdutil.UsageErrorf("%s: needs --kube", strings.Join(given, ", "))
		}
		if o.selector != "" {
			return cmdutil.UsageErrorf("--selector %s: needs --kube", o.selector)
		}
	}
	if o.targetGroupARN == "" {
		for _, f := range []struct{ name, v string }{{"--aws-endpoint", o.awsEndpoint}, {"--region", o.region}} {
			if f.v != "" {
				return cmdutil.UsageErrorf("%s %s: needs --target-group-arn", f.name, f.v)
			}
		}
	}
	// The timelines only exist in the record: the summary has no place for
	// them, and report joins them to the failures from the file.
	if o.any() && record == "" {
		return cmdutil.UsageErrorf("--kube and --target-group-arn write into the --record file: give --record")
	}
	if o.pollInterval <= 0 {
		return cmdutil.UsageErrorf("--poll-interval %v: must be positive", o.pollInterval)
	}
	if _, err := labels.Parse(o.selector); err != nil {
		return cmdutil.UsageErrorf("--selector %q: %v", o.selector, err)
	}
	return nil
}

// observers are the running watchers; stop ends them and waits, so every
// record they made is written before the record file is closed.
type observers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // the first write error, which makes the record incomplete
}

// startObservers connects to the cluster and the ELBv2 API and records
// their initial state, failing with one line (exit 2 for a bad flag,
// kubeconfig or ARN; 3 when a server cannot be reached or refuses us)
// before the prober sends anything. Later poll errors go to warn.
func startObservers(ctx context.Context, o *observeOptions, rec *timeline.Writer, warn io.Writer) (*observers, error) {
	ctx, cancel := context.WithCancel(ctx)
	obs := &observers{cancel: cancel}
	fail := func(err error) (*observers, error) { obs.stop(); return nil, err }
	if o.kube {
		w, err := startKube(ctx, o, func(r *timeline.Record) error { return obs.write(rec, r) })
		if err != nil {
			return fail(err)
		}
		obs.wg.Go(func() { _ = w.Wait() }) // its error is obs.err
	}
	if o.targetGroupARN != "" {
		p, err := elbv2.New(ctx, elbv2.Config{TargetGroupARN: o.targetGroupARN, Endpoint: o.awsEndpoint,
			Region: o.region, Interval: o.pollInterval,
			OnError: func(err error) { fmt.Fprintf(warn, "warning: --target-group-arn: %v\n", err) }})
		if err != nil {
			return fail(cmdutil.UsageErrorf("--target-group-arn: %w", err))
		}
		// The first poll here, not in Run, so a wrong ARN stops us before traffic.
		first, err := p.Poll(ctx)
		if err != nil {
			return fail(awsError(err))
		}
		for i := range first {
			obs.write(rec, &first[i])
		}
		obs.wg.Go(func() {
			if err := p.Run(ctx, func(r *timeline.Record) error { return obs.write(rec, r) }); err != nil {
				fmt.Fprintf(warn, "warning: --target-group-arn: %v\n", err)
			}
		})
	}
	return obs, nil
}

// write records r and keeps the first error, which stop returns; the
// watcher that got it stops sending.
func (obs *observers) write(rec *timeline.Writer, r *timeline.Record) error {
	err := rec.Write(r)
	if err != nil {
		obs.mu.Lock()
		if obs.err == nil {
			obs.err = err
		}
		obs.mu.Unlock()
	}
	return err
}

// stop ends the watchers and returns the first error writing their records.
func (obs *observers) stop() error {
	if obs == nil {
		return nil
	}
	obs.cancel()
	obs.wg.Wait()
	return obs.err
}

// startKube builds the client from the Kubernetes flags and starts the
// watch; kube.Start lists every resource once first, so a missing
// permission or an unreachable server is an error here (exit 3, as
// cmdutil.Code decides) rather than an informer retrying.
func startKube(ctx context.Context, o *observeOptions, sink timeline.Sink) (*kube.Watch, error) {
	cs, ns, err := o.flags.Client()
	if err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	w, err := kube.Start(ctx, cs, kube.Options{Namespace: ns, Selector: o.selector}, sink)
	if err != nil {
		return nil, fmt.Errorf("--kube: %w", err)
	}
	return w, nil
}

// awsError maps the first poll's error: an API error response about the
// request (bad ARN, target group not found) is input to fix, exit 2; no
// answer at all (wrong endpoint, no network) and access denied are exit 3.
func awsError(err error) error {
	err = fmt.Errorf("--target-group-arn: %w", err)
	var api smithy.APIError
	var netErr net.Error
	if errors.As(err, &api) && !errors.As(err, &netErr) {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}
