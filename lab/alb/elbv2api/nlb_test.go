package elbv2api

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/lab/nlb"
)

// Both lab load balancers are target groups the API serves.
var (
	_ TargetGroup = (*alb.LB)(nil)
	_ TargetGroup = (*nlb.LB)(nil)
)

// startNLB runs an NLB stand-in (its defaults, health checks quickened,
// then tweak) in front of a backend on 127.0.0.22, and the API over it.
func startNLB(t *testing.T, tweak func(*nlb.Config)) (*nlb.LB, *elbv2.Client, alb.Target) {
	t.Helper()
	backend := serveBackend(t, "127.0.0.22")
	cfg := nlb.DefaultConfig()
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationDelay = 3600 * time.Millisecond // 3600 API seconds: stays draining for the test
	cfg.DeregistrationPropagation = 0
	if tweak != nil {
		tweak(&cfg)
	}
	lb, err := nlb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	_, client := serve(t, lb)
	return lb, client, backend
}

// DescribeTargetGroups tells an NLB's TCP target group as AWS does: no
// path or matcher for a TCP check, both for an HTTP one, never a protocol
// version, and the health check's own port when it has one.
func TestSDKDescribesAnNLBTargetGroup(t *testing.T) {
	for _, c := range []struct {
		name  string
		tweak func(*nlb.Config)
		want  types.TargetGroup
	}{
		// The default timeout, 10 s of lab time, is 10000 API seconds at the
		// test's scale.
		{"tcp check, ip targets", nil, types.TargetGroup{
			TargetType: types.TargetTypeEnumIp, HealthCheckProtocol: types.ProtocolEnumTcp,
			HealthCheckPort: aws.String("traffic-port"), HealthCheckTimeoutSeconds: aws.Int32(10000)}},
		{"http check, instance targets", func(c *nlb.Config) {
			c.TargetType = nlb.TargetTypeInstance
			c.HealthCheck.Protocol, c.HealthCheck.Path, c.HealthCheck.Port = nlb.ProtocolHTTP, "/healthz", 8081
			c.HealthCheck.Timeout = 6 * time.Millisecond // 6 API seconds
		}, types.TargetGroup{
			TargetType: types.TargetTypeEnumInstance, HealthCheckProtocol: types.ProtocolEnumHttp,
			HealthCheckPort: aws.String("8081"), HealthCheckTimeoutSeconds: aws.Int32(6),
			HealthCheckPath: aws.String("/healthz"), Matcher: &types.Matcher{HttpCode: aws.String("200-399")}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lb, client, _ := startNLB(t, c.tweak)
			out, err := client.DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{
				LoadBalancerArn: aws.String(lb.LoadBalancerARN()), Names: []string{"rollsafe-lab-nlb"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.TargetGroups) != 1 {
				t.Fatalf("%d target groups", len(out.TargetGroups))
			}
			got, want := out.TargetGroups[0], c.want
			if aws.ToString(got.TargetGroupArn) != lb.TargetGroupARN() || got.Protocol != types.ProtocolEnumTcp ||
				aws.ToInt32(got.Port) != 80 || got.ProtocolVersion != nil ||
				len(got.LoadBalancerArns) != 1 || !strings.Contains(got.LoadBalancerArns[0], ":loadbalancer/net/") {
				t.Fatalf("target group %+v", got)
			}
			if got.TargetType != want.TargetType || got.HealthCheckProtocol != want.HealthCheckProtocol ||
				aws.ToString(got.HealthCheckPort) != aws.ToString(want.HealthCheckPort) ||
				aws.ToInt32(got.HealthCheckIntervalSeconds) != 20 ||
				aws.ToInt32(got.HealthCheckTimeoutSeconds) != aws.ToInt32(want.HealthCheckTimeoutSeconds) ||
				aws.ToInt32(got.HealthyThresholdCount) != 2 || aws.ToInt32(got.UnhealthyThresholdCount) != 2 {
				t.Fatalf("target group %+v; want %+v", got, want)
			}
			if aws.ToString(got.HealthCheckPath) != aws.ToString(want.HealthCheckPath) || (got.Matcher == nil) != (want.Matcher == nil) ||
				got.Matcher != nil && aws.ToString(got.Matcher.HttpCode) != aws.ToString(want.Matcher.HttpCode) {
				t.Fatalf("path %v matcher %+v; want %v %+v", got.HealthCheckPath, got.Matcher, want.HealthCheckPath, want.Matcher)
			}
		})
	}
}

// The NLB's attributes: the modelled ones with their defaults, then the
// ones it only reports; all modelled ones change in one call, scaled; a
// bad request changes nothing.
func TestSDKNLBAttributes(t *testing.T) {
	lb, client, _ := startNLB(t, nil)
	ctx := context.Background()
	arn := aws.String(lb.TargetGroupARN())
	out, err := client.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"deregistration_delay.timeout_seconds":                         "3600",
		"deregistration_delay.connection_termination.enabled":          "false",
		"target_health_state.unhealthy.connection_termination.enabled": "true",
		"preserve_client_ip.enabled":                                   "false",
		"stickiness.type":                                              "source_ip",
		"target_health_state.unhealthy.draining_interval_seconds":      "0",
	} {
		if got := attr(out.Attributes, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if v := attr(out.Attributes, "load_balancing.algorithm.type"); v != "" {
		t.Errorf("an ALB's attribute on an NLB: load_balancing.algorithm.type = %q", v)
	}

	modify := func(kv ...string) error {
		in := &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: arn}
		for i := 0; i < len(kv); i += 2 {
			in.Attributes = append(in.Attributes, types.TargetGroupAttribute{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		_, err := client.ModifyTargetGroupAttributes(ctx, in)
		return err
	}
	if err := modify("deregistration_delay.timeout_seconds", "30",
		"deregistration_delay.connection_termination.enabled", "true",
		"target_health_state.unhealthy.connection_termination.enabled", "false",
		"stickiness.enabled", "false"); err != nil {
		t.Fatal(err)
	}
	want := nlb.Attributes{DeregistrationDelay: 30 * time.Millisecond, ConnectionTermination: true}
	if got := lb.Attributes(); got != want {
		t.Fatalf("LB attributes %+v, want %+v (30 s scaled by %v)", got, want, scale)
	}
	for _, c := range []struct{ key, val, code string }{
		{"deregistration_delay.connection_termination.enabled", "yes", "ValidationError"},
		{"stickiness.enabled", "true", "InvalidConfigurationRequest"},
		{"slow_start.duration_seconds", "0", "ValidationError"}, // an ALB's attribute
	} {
		err := modify("deregistration_delay.timeout_seconds", "60", c.key, c.val)
		if code := errorCode(err); code != c.code {
			t.Errorf("%s=%s: error %v, want code %s", c.key, c.val, err, c.code)
		}
	}
	if got := lb.Attributes(); got != want {
		t.Fatalf("a rejected request changed the attributes: %+v", got)
	}
}

// DescribeTargetHealth reports an NLB target as the NLB routes by it, from
// registration to draining.
func TestSDKNLBTargetHealth(t *testing.T) {
	lb, client, backend := startNLB(t, nil)
	ctx := context.Background()
	arn := aws.String(lb.TargetGroupARN())
	td := []types.TargetDescription{{Id: aws.String(backend.IP), Port: aws.Int32(int32(backend.Port))}}
	if _, err := client.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: arn, Targets: td}); err != nil {
		t.Fatal(err)
	}
	d := waitForState(t, client, arn, types.TargetHealthStateEnumHealthy)
	if aws.ToString(d.Target.Id) != backend.IP || aws.ToInt32(d.Target.Port) != int32(backend.Port) ||
		aws.ToString(d.HealthCheckPort) != strconv.Itoa(backend.Port) {
		t.Fatalf("healthy target %+v, health check port %v", d.Target, aws.ToString(d.HealthCheckPort))
	}
	if _, err := client.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: arn, Targets: td}); err != nil {
		t.Fatal(err)
	}
	out, err := client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	proxy := lb.TargetHealth()
	if len(out.TargetHealthDescriptions) != 1 || len(proxy) != 1 {
		t.Fatalf("SDK %+v, NLB %+v", out.TargetHealthDescriptions, proxy)
	}
	h := out.TargetHealthDescriptions[0].TargetHealth
	if h.State != types.TargetHealthStateEnumDraining || h.Reason != types.TargetHealthReasonEnumDeregistrationInProgress ||
		string(h.State) != string(proxy[0].State) || string(h.Reason) != proxy[0].Reason {
		t.Fatalf("SDK %+v, NLB %+v", h, proxy[0])
	}
	out, err = client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: arn,
		Targets: []types.TargetDescription{{Id: aws.String("127.0.0.99")}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TargetHealthDescriptions[0]; d.TargetHealth.State != types.TargetHealthStateEnumUnused ||
		d.TargetHealth.Reason != types.TargetHealthReasonEnumNotRegistered || aws.ToInt32(d.Target.Port) != 80 {
		t.Fatalf("unregistered target %+v %+v", d.Target, d.TargetHealth)
	}
}

// waitForState polls DescribeTargetHealth until its one target is in state.
// The deadline only bounds a broken run; nothing asserts on durations.
func waitForState(t *testing.T, client *elbv2.Client, arn *string, state types.TargetHealthStateEnum) types.TargetHealthDescription {
	t.Helper()
	var last []types.TargetHealthDescription
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		out, err := client.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		last = out.TargetHealthDescriptions
		if len(last) == 1 && last[0].TargetHealth.State == state {
			return last[0]
		}
	}
	t.Fatalf("never %s; last %+v", state, last)
	return types.TargetHealthDescription{}
}
