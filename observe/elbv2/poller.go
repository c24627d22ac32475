// Package elbv2 records a target group's target health as a timeline: it
// polls the ELBv2 API (DescribeTargetHealth and
// DescribeTargetGroupAttributes) with aws-sdk-go-v2 and emits a
// timeline.Record on every change — what the seeds' aws_alb_test.sh printed
// by hand before each curl. The same code watches AWS and the lab's ELBv2
// API (Config.Endpoint).
package elbv2

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/rollsafe/rollsafe/timeline"
)

// Source is the Source of every record this package emits.
const Source = "elbv2"

// ReasonGone is the reason recorded when a target vanished from
// DescribeTargetHealth, which is what happens once a deregistered target has
// finished draining: the poller records it as "unused" with the API's own
// reason for a target that is not registered.
const ReasonGone = "Target.NotRegistered"

// Config says what to watch and how.
type Config struct {
	// TargetGroupARN is the target group to watch (required).
	TargetGroupARN string
	// Interval between polls; 0 means 5 s. Each poll costs two API calls,
	// and DescribeTargetHealth is rate limited per account: keep it ≥ 1 s on AWS.
	Interval time.Duration
	// Endpoint overrides the ELBv2 API endpoint (the lab's, or a proxy).
	Endpoint string
	// Region overrides the AWS config chain's region.
	Region string
	// Client is used instead of building one from the chain (tests, callers
	// with their own config).
	Client *awselbv2.Client
	// OnError is told about a failed poll after the first; Run keeps polling.
	// The first poll's error is returned by Run instead: a wrong ARN or
	// missing credentials should stop the caller at once.
	OnError func(error)
	// Now is the clock for record times; nil means time.Now.
	Now func() time.Time
}

// Poller watches one target group.
type Poller struct {
	cfg    Config
	client *awselbv2.Client
	now    func() time.Time

	// What the last successful poll saw.
	targets  map[string]targetState
	attrs    map[string]string
	lastPoll time.Time
	polled   bool
}

type targetState struct{ state, reason string }

// New builds a Poller; without cfg.Client it loads the standard AWS
// credential and region chain (environment, shared config, SSO, IMDS).
func New(ctx context.Context, cfg Config) (*Poller, error) {
	if cfg.TargetGroupARN == "" {
		return nil, errors.New("elbv2: a target group ARN is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	p := &Poller{cfg: cfg, client: cfg.Client, now: cfg.Now, targets: map[string]targetState{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.client == nil {
		var opts []func(*config.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, config.WithRegion(cfg.Region))
		}
		awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("elbv2: aws config: %w", err)
		}
		if awsCfg.Region == "" {
			return nil, errors.New("elbv2: no AWS region: set AWS_REGION or a profile region, or pass one")
		}
		p.client = awselbv2.NewFromConfig(awsCfg, func(o *awselbv2.Options) {
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
	}
	return p, nil
}

// Run polls until ctx is done, passing every change to sink in the order
// seen, from Run's goroutine. The first poll emits every target's state
// and the attributes. It returns nil when ctx is cancelled, the first
// poll's error, or sink's first error, which ends the polling.
func (p *Poller) Run(ctx context.Context, sink timeline.Sink) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for first := true; ; first = false {
		recs, err := p.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && first:
			return err
		case err != nil && p.cfg.OnError != nil:
			p.cfg.OnError(err)
		}
		for i := range recs {
			if err := sink(&recs[i]); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll asks the API once and returns the changes since the last successful
// poll: a Kind target record per target whose state or reason changed (or
// that vanished), and a Kind event record when the attributes changed.
func (p *Poller) Poll(ctx context.Context) ([]timeline.Record, error) {
	arn := aws.String(p.cfg.TargetGroupARN)
	health, err := p.client.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: arn})
	if err != nil {
		return nil, fmt.Errorf("DescribeTargetHealth %s: %w", p.cfg.TargetGroupARN, err)
	}
	at := p.now()
	attrOut, err := p.client.DescribeTargetGroupAttributes(ctx, &awselbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: arn})
	if err != nil {
		return nil, fmt.Errorf("DescribeTargetGroupAttributes %s: %w", p.cfg.TargetGroupARN, err)
	}

	var recs []timeline.Record
	seen := map[string]targetState{}
	for _, d := range health.TargetHealthDescriptions {
		if d.Target == nil || d.TargetHealth == nil {
			continue
		}
		key := targetKey(aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port))
		now := targetState{state: string(d.TargetHealth.State), reason: string(d.TargetHealth.Reason)}
		seen[key] = now
		if old, ok := p.targets[key]; ok && old == now {
			continue
		}
		r := p.record(at, key, now)
		if desc := aws.ToString(d.TargetHealth.Description); desc != "" {
			r.Attrs["description"] = desc
		}
		if az := aws.ToString(d.Target.AvailabilityZone); az != "" {
			r.Attrs["availability_zone"] = az
		}
		recs = append(recs, r)
	}
	// Targets no longer listed have finished draining (or were removed).
	for _, key := range slices.Sorted(maps.Keys(p.targets)) {
		if _, ok := seen[key]; !ok && p.targets[key].state != "unused" {
			r := p.record(at, key, targetState{state: "unused", reason: ReasonGone})
			r.Attrs["gone"] = "true"
			recs = append(recs, r)
		}
	}
	p.targets = seen

	attrs := map[string]string{}
	for _, a := range attrOut.Attributes {
		attrs[aws.ToString(a.Key)] = aws.ToString(a.Value)
	}
	if !maps.Equal(attrs, p.attrs) {
		r := timeline.Record{Kind: timeline.KindEvent, Time: at, Source: Source,
			Object: p.cfg.TargetGroupARN, Reason: "target group attributes", Attrs: attrs}
		recs = append(recs, r)
		p.attrs = attrs
	}
	p.lastPoll, p.polled = at, true
	return recs, nil
}

// record builds a target record. The change happened between the previous
// poll and at; prev_poll says when the window opened, so package
// attribution (in report and the lab) takes the time as that window.
func (p *Poller) record(at time.Time, key string, s targetState) timeline.Record {
	r := timeline.Record{Kind: timeline.KindTarget, Time: at, Source: Source, Object: key,
		State: s.state, Reason: s.reason,
		Attrs: map[string]string{"target_group": p.cfg.TargetGroupARN}}
	if p.polled {
		r.Attrs["prev_poll"] = p.lastPoll.UTC().Format(time.RFC3339Nano)
	}
	return r
}

// targetKey is "ip:port", the form access logs use for target:port.
func targetKey(id string, port int32) string {
	if port == 0 {
		return id
	}
	return net.JoinHostPort(id, strconv.Itoa(int(port)))
}
