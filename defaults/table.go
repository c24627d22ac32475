package defaults

import (
	"strconv"
	"time"
)

// Fact is one entry of Table: a value defined in this package, as the docs
// write it, with its source.
type Fact struct {
	// Name is the constant's name in this package.
	Name string
	// Value is how the docs write it: "300 s", "5", or the name itself.
	Value string
	// Source is where the value comes from: a URL, an issue, or why it is
	// an assumption.
	Source string
	// Terms are the words docs/rules use for the setting; a stated default
	// right after one of them must be Value.
	Terms []string
}

// IsName says whether the fact is a well-known string rather than a number.
func (f Fact) IsName() bool {
	_, err := strconv.ParseFloat(f.number(), 64)
	return err != nil
}

// number is Value without its unit.
func (f Fact) number() string {
	if n := len(f.Value); n > 2 && f.Value[n-2:] == " s" {
		return f.Value[:n-2]
	}
	return f.Value
}

// Number is the fact's value as a number (seconds for durations); false
// for a name.
func (f Fact) Number() (float64, bool) {
	v, err := strconv.ParseFloat(f.number(), 64)
	return v, err == nil
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s" }

const (
	srcTargetGroup     = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay"
	srcIdle            = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout"
	src504             = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html#http-504-issues"
	srcHealth          = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html"
	srcIngressAnn      = "https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/"
	srcServiceAnn      = "https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/"
	srcRequeue         = "aws-load-balancer-controller pkg/targetgroupbinding/resource_manager.go, defaultTargetHealthRequeueDuration"
	src2366            = "https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/2366"
	srcGate            = "https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/"
	srcClass           = "https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/ingress_class/"
	srcK8sClass        = "https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-class"
	srcTermination     = "https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination"
	srcProbes          = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#configure-probes"
	srcCLBAttrs        = "kubernetes/cloud-provider-aws pkg/providers/v1/aws.go, ensureLoadBalancer's loadBalancerAttributes"
	srcCLBDrain        = "unverified for the provider (it sends no timeout); AWS's default when enabled: https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-conn-drain.html"
	srcCLBHealth       = "kubernetes/cloud-provider-aws pkg/providers/v1/aws_loadbalancer.go, defaultElbHC*"
	srcInTreeNLBHealth = "kubernetes/cloud-provider-aws pkg/providers/v1/aws_loadbalancer.go, defaultNlbHealthCheck* in buildNLBHealthCheckConfiguration"
	srcInTreeNLBLocal  = "kubernetes/cloud-provider-aws pkg/providers/v1/aws.go, buildNLBHealthCheckConfiguration (externalTrafficPolicy Local)"
	srcNLBLocalHealth  = "aws-load-balancer-controller pkg/service/model_builder.go, defaultHealthCheck*ForInstanceModeLocal"
	srcCLBAnn          = "kubernetes/cloud-provider-aws pkg/providers/v1/aws.go, ServiceAnnotation* constants"
	srcNLBP            = "users' measurements: aws-load-balancer-controller#2366, #3270; aws/containers-roadmap#470"
	srcNLBIdle         = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html"
	srcTGAttr          = "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupAttribute.html"
	srcKubeProxy       = "kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go (v1.37.2)"
	srcNLBAttrs        = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html"
	srcNLBHealth       = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html"
)

// Table lists every value of this package with its source, in the order
// of the declarations (defaults.go, then nginx.go).
var Table = append([]Fact{
	{"DeregistrationDelay", secs(DeregistrationDelay), srcTargetGroup, []string{"deregistration_delay.timeout_seconds", "deregistration delay"}},
	{"IdleTimeout", secs(IdleTimeout), srcIdle, []string{"idle_timeout.timeout_seconds", "connection idle timeout"}},
	{"ConnectTimeout", secs(ConnectTimeout), src504, []string{"connect timeout"}},
	{"APIHealthCheckInterval", secs(APIHealthCheckInterval), srcHealth, nil},
	{"APIHealthCheckTimeout", secs(APIHealthCheckTimeout), srcHealth, nil},
	{"APIHealthyThreshold", strconv.Itoa(APIHealthyThreshold), srcHealth, nil},
	{"APIUnhealthyThreshold", strconv.Itoa(APIUnhealthyThreshold), srcHealth, nil},
	{"HealthCheckPath", HealthCheckPath, srcHealth, []string{"healthcheck-path"}},
	{"HealthCheckMatcher", HealthCheckMatcher, srcHealth, []string{"success-codes"}},
	{"IngressHealthCheckInterval", secs(IngressHealthCheckInterval), srcIngressAnn, []string{"healthcheck-interval-seconds"}},
	{"IngressHealthCheckTimeout", secs(IngressHealthCheckTimeout), srcIngressAnn, []string{"healthcheck-timeout-seconds"}},
	{"IngressHealthyThreshold", strconv.Itoa(IngressHealthyThreshold), srcIngressAnn, []string{"healthy-threshold-count"}},
	{"IngressUnhealthyThreshold", strconv.Itoa(IngressUnhealthyThreshold), srcIngressAnn, []string{"unhealthy-threshold-count"}},
	{"NLBHealthCheckInterval", secs(NLBHealthCheckInterval), srcServiceAnn, nil},
	{"NLBHealthCheckTimeout", secs(NLBHealthCheckTimeout), srcServiceAnn, nil},
	{"NLBHealthyThreshold", strconv.Itoa(NLBHealthyThreshold), srcServiceAnn, nil},
	{"NLBUnhealthyThreshold", strconv.Itoa(NLBUnhealthyThreshold), srcServiceAnn, nil},
	{"CLBConnectionDrainingEnabled", strconv.FormatBool(CLBConnectionDrainingEnabled), srcCLBAttrs, nil},
	{"CLBConnectionDrainingTimeout", secs(CLBConnectionDrainingTimeout), srcCLBDrain, []string{"connection-draining-timeout"}},
	{"CLBIdleTimeout", secs(CLBIdleTimeout), srcCLBAttrs, []string{"connection-idle-timeout"}},
	{"CLBHealthyThreshold", strconv.Itoa(CLBHealthyThreshold), srcCLBHealth, nil},
	{"CLBUnhealthyThreshold", strconv.Itoa(CLBUnhealthyThreshold), srcCLBHealth, nil},
	{"CLBHealthCheckTimeout", secs(CLBHealthCheckTimeout), srcCLBHealth, nil},
	{"CLBHealthCheckInterval", secs(CLBHealthCheckInterval), srcCLBHealth, nil},
	{"InTreeNLBHealthCheckInterval", secs(InTreeNLBHealthCheckInterval), srcInTreeNLBHealth, nil},
	{"InTreeNLBHealthCheckTimeout", secs(InTreeNLBHealthCheckTimeout), srcInTreeNLBHealth, nil},
	{"InTreeNLBHealthCheckThreshold", strconv.Itoa(InTreeNLBHealthCheckThreshold), srcInTreeNLBHealth, nil},
	{"InTreeNLBLocalHealthCheckInterval", secs(InTreeNLBLocalHealthCheckInterval), srcInTreeNLBLocal, nil},
	{"InTreeNLBLocalHealthCheckTimeout", secs(InTreeNLBLocalHealthCheckTimeout), srcInTreeNLBLocal, nil},
	{"InTreeNLBLocalHealthCheckThreshold", strconv.Itoa(InTreeNLBLocalHealthCheckThreshold), srcInTreeNLBLocal, nil},
	{"NLBLocalHealthCheckInterval", secs(NLBLocalHealthCheckInterval), srcNLBLocalHealth, nil},
	{"NLBLocalHealthCheckTimeout", secs(NLBLocalHealthCheckTimeout), srcNLBLocalHealth, nil},
	{"NLBLocalHealthyThreshold", strconv.Itoa(NLBLocalHealthyThreshold), srcNLBLocalHealth, nil},
	{"NLBLocalUnhealthyThreshold", strconv.Itoa(NLBLocalUnhealthyThreshold), srcNLBLocalHealth, nil},
	{"NLBPropagation", secs(NLBPropagation), srcNLBP, []string{"NLB propagation"}},
	{"NLBTCPIdleTimeout", secs(NLBTCPIdleTimeout), srcNLBIdle, []string{"tcp.idle_timeout.seconds"}},
	{"NLBConnectionTermination", strconv.FormatBool(NLBConnectionTermination), srcTGAttr, nil},
	{"NLBUnhealthyConnectionTermination", strconv.FormatBool(NLBUnhealthyConnectionTermination), srcNLBAttrs + "; Pulumi AWS provider docs", nil},
	{"NLBTCPHealthCheckTimeout", secs(NLBTCPHealthCheckTimeout), srcNLBHealth, nil},
	{"NLBMatcher", NLBMatcher, srcNLBHealth, nil},
	{"KubeProxyMinSyncPeriod", secs(KubeProxyMinSyncPeriod), srcKubeProxy, []string{"min-sync-period", "minSyncPeriod"}},
	{"KubeProxySyncPeriod", secs(KubeProxySyncPeriod), srcKubeProxy, []string{"iptables-sync-period"}},
	{"GateRequeue", secs(GateRequeue), srcRequeue, []string{"gate re-check", "readiness-gate requeue"}},
	{"Propagation", secs(Propagation), src2366, []string{"P defaults to"}},
	{"ControllerLag", secs(ControllerLag), "assumption: no public measurement", []string{"controller lag defaults to"}},
	{"LabPropagation", secs(LabPropagation), "lab choice inside the 2-15 s of " + src2366, nil},
	{"LabControllerLag", secs(LabControllerLag), "assumption: about a second in practice", nil},
	{"TerminationGracePeriod", secs(TerminationGracePeriod), srcTermination, []string{"terminationGracePeriodSeconds"}},
	{"ProbePeriod", secs(ProbePeriod), srcProbes, []string{"periodSeconds"}},
	{"ProbeTimeout", secs(ProbeTimeout), srcProbes, []string{"timeoutSeconds"}},
	{"ProbeSuccessThreshold", strconv.Itoa(ProbeSuccessThreshold), srcProbes, []string{"successThreshold"}},
	{"ProbeFailureThreshold", strconv.Itoa(ProbeFailureThreshold), srcProbes, []string{"failureThreshold"}},
	{"MaxRequestDuration", secs(MaxRequestDuration), "rollsafe: Kubernetes' default grace period", []string{"--max-request-duration"}},
	{"Margin", secs(Margin), "rollsafe: lab TestMinimalTimingsProven", nil},
	{"GateInjectLabel", GateInjectLabel, srcGate, nil},
	{"GatePrefix", GatePrefix, srcGate, nil},
	{"LegacyGatePrefix", LegacyGatePrefix, "aws-alb-ingress-controller v1 pod readiness gates", nil},
	{"ALBController", ALBController, srcClass, nil},
	{"ALBClassName", ALBClassName, srcClass, nil},
	{"NLBLoadBalancerClass", NLBLoadBalancerClass, srcServiceAnn, nil},
	{"ALBAnnotationPrefix", ALBAnnotationPrefix, srcIngressAnn, nil},
	{"ServiceAnnotationPrefix", ServiceAnnotationPrefix, srcServiceAnn, nil},
	{"IngressClassAnnotation", IngressClassAnnotation, srcK8sClass, nil},
	{"DefaultClassAnnotation", DefaultClassAnnotation, srcK8sClass, nil},
	{"AttrDeregistrationDelay", AttrDeregistrationDelay, srcTargetGroup, nil},
	{"AttrIdleTimeout", AttrIdleTimeout, srcIdle, nil},
	{"AttrConnectionTermination", AttrConnectionTermination, srcTGAttr, nil},
	{"AttrUnhealthyConnectionTermination", AttrUnhealthyConnectionTermination, srcNLBAttrs, nil},
	{"CLBDrainingEnabledAnnotation", CLBDrainingEnabledAnnotation, srcCLBAnn, nil},
	{"CLBDrainingTimeoutAnnotation", CLBDrainingTimeoutAnnotation, srcCLBAnn, nil},
	{"CLBIdleTimeoutAnnotation", CLBIdleTimeoutAnnotation, srcCLBAnn, nil},
	{"BackendProtocolAnnotation", BackendProtocolAnnotation, srcCLBAnn, nil},
	{"LBTypeAnnotation", LBTypeAnnotation, srcCLBAnn, nil},
	{"NLBTargetGroupAttributesAnnotation", NLBTargetGroupAttributesAnnotation, srcServiceAnn, nil},
}, nginxFacts...)
