package elbv2api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/rollsafe/rollsafe/lab/alb"
)

// The client under test is the real aws-sdk-go-v2 ELBv2 client; the only
// stand-in is AWS itself, which is what this package replaces.

const scale = 0.001 // 1 API second = 1 ms of lab time

type lab struct {
	lb      *alb.LB
	api     *Server
	client  *elbv2.Client
	backend alb.Target
	tgArn   string
}

func startLab(t *testing.T) *lab {
	t.Helper()
	backend := serveBackend(t, "127.0.0.21")
	cfg := alb.DefaultConfig()
	cfg.HealthCheck.Interval = 20 * time.Millisecond
	cfg.HealthCheck.Timeout = time.Second
	cfg.HealthCheck.HealthyThreshold = 2
	cfg.DeregistrationDelay = 3600 * time.Millisecond // 3600 API seconds: stays draining for the test
	cfg.Propagation = 0
	cfg.Nodes = 1
	lb, err := alb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	api, client := serve(t, lb)
	return &lab{lb: lb, api: api, client: client, backend: backend}
}

// serveBackend starts a "pod" on ip that answers "pod" to every request.
func serveBackend(t *testing.T, ip string) alb.Target {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pod")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return alb.Target{IP: ip, Port: ln.Addr().(*net.TCPAddr).Port}
}

// serve starts the API over tg on loopback and returns it with an SDK
// client of it (static credentials, no retries).
func serve(t *testing.T, tg TargetGroup) (*Server, *elbv2.Client) {
	t.Helper()
	api := New(tg, Options{TimeScale: scale})
	if err := api.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	client := elbv2.New(elbv2.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLAB", "secret", ""),
		BaseEndpoint:     aws.String(api.URL()),
		RetryMaxAttempts: 1,
	})
	return api, client
}

func TestSDKSeesWhatTheProxyRoutesBy(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()

	tgs, err := l.client.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"rollsafe-lab"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs.TargetGroups) != 1 {
		t.Fatalf("%d target groups", len(tgs.TargetGroups))
	}
	tg := tgs.TargetGroups[0]
	arn := aws.ToString(tg.TargetGroupArn)
	if arn != l.lb.TargetGroupARN() || tg.TargetType != types.TargetTypeEnumIp ||
		aws.ToInt32(tg.HealthCheckIntervalSeconds) != 20 || aws.ToInt32(tg.HealthyThresholdCount) != 2 ||
		aws.ToString(tg.Matcher.HttpCode) != "200" || len(tg.LoadBalancerArns) != 1 ||
		tg.Protocol != types.ProtocolEnumHttp || tg.HealthCheckProtocol != types.ProtocolEnumHttp ||
		aws.ToString(tg.ProtocolVersion) != "HTTP1" || aws.ToString(tg.HealthCheckPath) != "/" {
		t.Fatalf("target group %+v", tg)
	}

	// Register through the API: the proxy starts routing to the target.
	if _, err := l.client.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
		TargetGroupArn: &arn,
		Targets:        []types.TargetDescription{{Id: aws.String(l.backend.IP), Port: aws.Int32(int32(l.backend.Port))}},
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[types.TargetHealthStateEnum]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for !seen[types.TargetHealthStateEnumHealthy] && time.Now().Before(deadline) {
		out, err := l.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TargetHealthDescriptions) != 1 {
			t.Fatalf("%d descriptions", len(out.TargetHealthDescriptions))
		}
		d := out.TargetHealthDescriptions[0]
		seen[d.TargetHealth.State] = true
		if aws.ToString(d.Target.Id) != l.backend.IP || aws.ToInt32(d.Target.Port) != int32(l.backend.Port) {
			t.Fatalf("target %+v", d.Target)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !seen[types.TargetHealthStateEnumHealthy] {
		t.Fatalf("never healthy; saw %v", seen)
	}
	resp, err := http.Get(l.lb.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "pod" {
		t.Fatalf("proxy: %d %q", resp.StatusCode, body)
	}

	// Deregister: the SDK reports draining, exactly as the proxy has it.
	if _, err := l.client.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
		TargetGroupArn: &arn,
		Targets:        []types.TargetDescription{{Id: aws.String(l.backend.IP), Port: aws.Int32(int32(l.backend.Port))}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := l.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	proxy := l.lb.TargetHealth()
	d := out.TargetHealthDescriptions[0]
	if d.TargetHealth.State != types.TargetHealthStateEnumDraining ||
		d.TargetHealth.Reason != types.TargetHealthReasonEnumDeregistrationInProgress ||
		string(d.TargetHealth.State) != string(proxy[0].State) || string(d.TargetHealth.Reason) != proxy[0].Reason {
		t.Fatalf("SDK %+v, proxy %+v", d.TargetHealth, proxy)
	}

	// Asking about a target that is not registered: unused, NotRegistered.
	out, err = l.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn,
		Targets: []types.TargetDescription{{Id: aws.String("127.0.0.99"), Port: aws.Int32(80)}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TargetHealthDescriptions[0]; d.TargetHealth.State != types.TargetHealthStateEnumUnused ||
		d.TargetHealth.Reason != types.TargetHealthReasonEnumNotRegistered {
		t.Fatalf("%+v", d.TargetHealth)
	}
}

func TestSDKAttributes(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	arn := l.lb.TargetGroupARN()
	attrs, err := l.client.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if v := attr(attrs.Attributes, "deregistration_delay.timeout_seconds"); v != "3600" {
		t.Fatalf("delay %q", v)
	}
	_, err = l.client.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: &arn,
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("30")}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.lb.Attributes().DeregistrationDelay; got != 30*time.Millisecond {
		t.Fatalf("LB delay %v, want 30ms (30 s scaled by %v)", got, scale)
	}
	// Bad values change nothing and come back as the documented error codes.
	for _, c := range []struct{ key, val, code string }{
		{"deregistration_delay.timeout_seconds", "4000", "ValidationError"},
		{"no.such.attribute", "1", "ValidationError"},
		{"slow_start.duration_seconds", "30", "InvalidConfigurationRequest"},
	} {
		_, err = l.client.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: &arn,
			Attributes: []types.TargetGroupAttribute{{Key: aws.String(c.key), Value: aws.String(c.val)}}})
		if code := errorCode(err); code != c.code {
			t.Errorf("%s=%s: error %v, want code %s", c.key, c.val, err, c.code)
		}
	}
	if got := l.lb.Attributes().DeregistrationDelay; got != 30*time.Millisecond {
		t.Fatalf("a rejected change changed the delay: %v", got)
	}
}

func TestSDKErrors(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	_, err := l.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/other/1")})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown target group: %v", err)
	}
	arn := l.lb.TargetGroupARN()
	_, err = l.client.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: &arn,
		Targets: []types.TargetDescription{{Id: aws.String("10.0.0.1")}}})
	var it *types.InvalidTargetException
	if !errors.As(err, &it) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback target: %v", err)
	}
}

func TestRawQueryErrors(t *testing.T) {
	l := startLab(t)
	for _, c := range []struct {
		form url.Values
		code string
	}{
		{url.Values{"Action": {"DescribeTargetGroups"}, "Version": {"2012-06-01"}}, "InvalidParameterValue"},
		{url.Values{"Action": {"CreateLoadBalancer"}, "Version": {apiVersion}}, "InvalidAction"},
		{url.Values{"Action": {"DescribeTargetHealth"}, "Version": {apiVersion}}, "ValidationError"},
	} {
		resp, err := http.PostForm(l.api.URL(), c.form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "<ErrorResponse") ||
			!strings.Contains(string(body), "<Code>"+c.code+"</Code>") || !strings.Contains(string(body), "<RequestId>") {
			t.Errorf("%v: %d %s", c.form, resp.StatusCode, body)
		}
	}
}

func attr(as []types.TargetGroupAttribute, k string) string {
	for _, a := range as {
		if aws.ToString(a.Key) == k {
			return aws.ToString(a.Value)
		}
	}
	return ""
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
