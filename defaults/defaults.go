// Package defaults is the one home of the numbers and names rollsafe takes
// from AWS, Kubernetes and the AWS Load Balancer Controller ("the
// controller"), and of rollsafe's own defaults derived from them. Each is
// defined once here, with its source; workload, check, the lab, its ALB and
// controller stand-ins and attribution use these, and Table lists them so
// that tests can hold docs/rules and docs/lab.md to the same values.
package defaults

import "time"

// AWS Elastic Load Balancing.
const (
	// DeregistrationDelay is deregistration_delay.timeout_seconds: how long
	// a deregistered target stays draining (range 0-3600 s). Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay
	DeregistrationDelay = 300 * time.Second
	// IdleTimeout is an ALB's idle_timeout.timeout_seconds (a Classic
	// ELB's is CLBIdleTimeout). Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout
	IdleTimeout = 60 * time.Second
	// ConnectTimeout is how long an ALB waits for a target to accept a
	// connection before it answers 504. Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html#http-504-issues
	ConnectTimeout = 10 * time.Second
)

// The ELBv2 API's health check defaults for an HTTP target group. Source:
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
const (
	APIHealthCheckInterval = 30 * time.Second
	APIHealthCheckTimeout  = 5 * time.Second
	APIHealthyThreshold    = 5
	APIUnhealthyThreshold  = 2
	// HealthCheckPath and HealthCheckMatcher are the API's and the
	// controller's alike.
	HealthCheckPath    = "/"
	HealthCheckMatcher = "200"
)

// The controller's defaults for an Ingress's health check annotations
// (alb.ingress.kubernetes.io/healthcheck-*), which differ from the API's.
// Source: https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/
const (
	IngressHealthCheckInterval = 15 * time.Second
	IngressHealthCheckTimeout  = 5 * time.Second
	IngressHealthyThreshold    = 2
	IngressUnhealthyThreshold  = 2
)

// The controller's defaults for a Service's NLB health check annotations
// (service.beta.kubernetes.io/aws-load-balancer-healthcheck-*). Source:
// https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/
const (
	NLBHealthCheckInterval = 10 * time.Second
	NLBHealthCheckTimeout  = 10 * time.Second
	NLBHealthyThreshold    = 3
	NLBUnhealthyThreshold  = 3
)

// The Classic ELB the in-tree AWS cloud provider (kubernetes/cloud-provider-aws)
// makes for a Service of type LoadBalancer that names no loadBalancerClass
// and no NLB aws-load-balancer-type. Its targets are nodes (instance
// targets on the Service's NodePorts). Source: kubernetes/cloud-provider-aws
// pkg/providers/v1/aws.go, where ensureLoadBalancer starts from
// ConnectionDraining{Enabled: false} and ConnectionSettings{IdleTimeout: 60}
// before reading the annotations, and aws_loadbalancer.go (defaultElbHC*).
const (
	// CLBConnectionDrainingEnabled: draining is off unless
	// CLBDrainingEnabledAnnotation says "true".
	CLBConnectionDrainingEnabled = false
	// CLBConnectionDrainingTimeout is what rollsafe assumes when draining
	// is enabled without CLBDrainingTimeoutAnnotation: the provider then
	// sends no timeout, and AWS documents 300 s as the default when
	// draining is enabled (https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-conn-drain.html).
	// That an API call without a timeout gets those 300 s is unverified.
	CLBConnectionDrainingTimeout = 300 * time.Second
	// CLBIdleTimeout is the connection idle timeout when
	// CLBIdleTimeoutAnnotation is unset.
	CLBIdleTimeout = 60 * time.Second
	// The health check when the aws-load-balancer-healthcheck-*
	// annotations are unset (aws_loadbalancer.go, defaultElbHC*).
	CLBHealthyThreshold    = 2
	CLBUnhealthyThreshold  = 6
	CLBHealthCheckTimeout  = 5 * time.Second
	CLBHealthCheckInterval = 10 * time.Second
)

// The NLB the in-tree AWS cloud provider makes for a Service with
// aws-load-balancer-type "nlb": its health check when the
// aws-load-balancer-healthcheck-* annotations are unset, TCP on the
// traffic port. Source: kubernetes/cloud-provider-aws
// pkg/providers/v1/aws_loadbalancer.go, defaultNlbHealthCheck* as
// buildNLBHealthCheckConfiguration uses them (one threshold for both).
const (
	InTreeNLBHealthCheckInterval  = 30 * time.Second
	InTreeNLBHealthCheckTimeout   = 10 * time.Second
	InTreeNLBHealthCheckThreshold = 3
)

// The in-tree provider's NLB health check for a Service with
// externalTrafficPolicy Local: HTTP on the health-check node port
// (servicehelpers.GetServiceHealthCheckPathPort), one threshold for both.
// Source: kubernetes/cloud-provider-aws pkg/providers/v1/aws.go,
// buildNLBHealthCheckConfiguration's ExternalTrafficPolicyTypeLocal branch.
const (
	InTreeNLBLocalHealthCheckInterval  = 10 * time.Second
	InTreeNLBLocalHealthCheckTimeout   = 10 * time.Second
	InTreeNLBLocalHealthCheckThreshold = 2
)

// The controller's health check for instance targets of a Service with
// externalTrafficPolicy Local: HTTP /healthz on the health-check node port,
// unless the health check annotations say otherwise. Source:
// aws-load-balancer-controller pkg/service/model_builder.go,
// defaultHealthCheck*ForInstanceModeLocal (used by
// buildTargetGroupHealthCheckConfigForInstanceModeLocal). An Ingress's
// target group gets no such branch: it checks the traffic port.
const (
	NLBLocalHealthCheckInterval = 10 * time.Second
	NLBLocalHealthCheckTimeout  = 6 * time.Second
	NLBLocalHealthyThreshold    = 2
	NLBLocalUnhealthyThreshold  = 2
)

// Network Load Balancer facts beyond the ones above.
const (
	// NLBPropagation is P for an NLB: users measure new connections
	// reaching a deregistered target for about 2 minutes, whatever the
	// deregistration delay (aws-load-balancer-controller#2366 and #3270,
	// the latter with a 5 s delay; aws/containers-roadmap#470). AWS
	// publishes no figure. It is check's default P for NLB ip targets.
	NLBPropagation = 120 * time.Second
	// NLBTCPIdleTimeout is an NLB listener's tcp.idle_timeout.seconds
	// default. Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html
	NLBTCPIdleTimeout = 350 * time.Second
	// NLBConnectionTermination is AttrConnectionTermination's default for
	// TCP target groups (new UDP and TCP_UDP groups default to true): at
	// the end of the deregistration delay the NLB does not close the
	// target's connections. Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupAttribute.html
	NLBConnectionTermination = false
	// NLBUnhealthyConnectionTermination is
	// AttrUnhealthyConnectionTermination's default: the NLB resets the
	// connections of a target that turns unhealthy. Sources: the NLB user
	// guide, "Connection termination for unhealthy targets"
	// (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html);
	// the default true as the Pulumi AWS provider documents it
	// (TargetGroupTargetHealthState.enableUnhealthyConnectionTermination).
	NLBUnhealthyConnectionTermination = true
	// NLBTCPHealthCheckTimeout is the ELBv2 API's health-check timeout for
	// an NLB target group with a TCP check (APIHealthCheckTimeout is the
	// ALB's). Source:
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html
	NLBTCPHealthCheckTimeout = 10 * time.Second
	// NLBMatcher is the success codes an NLB's HTTP health check accepts by
	// default (same source).
	NLBMatcher = "200-399"
)

// kube-proxy, the hop of every instance target: each node's kube-proxy
// rewrites its rules after an endpoint change, no sooner than its minimum
// sync period after its last sync, and at least every sync period.
// Source: kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go (v1.37.2),
// iptables and nftables modes alike.
const (
	KubeProxyMinSyncPeriod = 1 * time.Second
	KubeProxySyncPeriod    = 30 * time.Second
)

// The controller's behaviour.
const (
	// GateRequeue is how often the controller re-checks target health for
	// a pod readiness gate whose target is not yet healthy:
	// defaultTargetHealthRequeueDuration in the controller's
	// pkg/targetgroupbinding/resource_manager.go (10 s in older releases).
	GateRequeue = 15 * time.Second
	// Propagation is P, how long after a deregistration load balancer nodes
	// may still send new requests to the target. AWS publishes no figure;
	// the one public measurement is about 17 s for an ALB ip target after
	// it turned draining (https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/2366).
	// It is check's default; `rollsafe report` measures P on the user's
	// own load balancer and prints the --propagation to use instead.
	Propagation = 17 * time.Second
	// ControllerLag is check's default for the time from a pod turning
	// Terminating to the controller's DeregisterTargets call (endpoint
	// update + reconcile). No public measurement backs it: an assumption,
	// conservative next to the lab's LabControllerLag; `rollsafe report`
	// measures it.
	ControllerLag = 5 * time.Second
)

// The lab's own values, where they differ from the ones above on purpose.
const (
	// LabPropagation is the P the lab's scenarios run with: shorter than
	// Propagation to keep replays short, and inside the 2-15 s of 502/504s
	// users report in the same issue (#2366). It is a scenario setting,
	// and the lab's attribution measures it back from the evidence.
	LabPropagation = 10 * time.Second
	// LabControllerLag is the reconcile lag of the lab's controller
	// stand-in: an assumption (about a second in practice); check's
	// ControllerLag assumes more, to stay on the safe side.
	LabControllerLag = 1 * time.Second
)

// Kubernetes.
const (
	// TerminationGracePeriod is terminationGracePeriodSeconds when unset.
	// Source: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
	TerminationGracePeriod = 30 * time.Second
)

// Readiness probe defaults. Source:
// https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#configure-probes
const (
	ProbePeriod           = 10 * time.Second
	ProbeTimeout          = 1 * time.Second
	ProbeSuccessThreshold = 1
	ProbeFailureThreshold = 3
)

// rollsafe's defaults, derived from the facts above.
const (
	// MaxRequestDuration is check's default for the longest request the
	// app serves: Kubernetes' default grace period, since a workload that
	// did not raise it cannot finish longer requests on shutdown anyway.
	MaxRequestDuration = TerminationGracePeriod
	// Margin is added to the boundaries sized from P: the preStop
	// (controller lag + P) and the deregistration delay (P + the longest
	// request). A preStop exactly as long as lag + P races the last load
	// balancer node: the lab loses requests at that boundary (lab
	// TestMinimalTimingsProven; docs/guide.md has the figures). check
	// --recommend and the preStop `rollsafe report` implies both add it.
	Margin = 2 * time.Second
)

// StopWindow is how long after a pod turns Terminating new requests may
// still reach it: the controller's lag to deregister it, then propagation
// P. The preStop must cover it; check and report size it by this one sum.
func StopWindow(controllerLag, propagation time.Duration) time.Duration {
	return controllerLag + propagation
}

// Well-known names of the controller, the in-tree AWS cloud provider and
// Kubernetes.
const (
	// GateInjectLabel on a Namespace, set to "enabled", makes the
	// controller's webhook inject readiness gates into new pods. Source:
	// https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/
	GateInjectLabel = "elbv2.k8s.aws/pod-readiness-gate-inject"
	// GatePrefix begins the readiness gate the webhook injects:
	// target-health.elbv2.k8s.aws/<TargetGroupBinding name> (same page).
	GatePrefix = "target-health.elbv2.k8s.aws/"
	// LegacyGatePrefix is the gate of the controller's v1 releases
	// (aws-alb-ingress-controller), whose pod templates declared it by
	// hand; rollsafe still counts it as a gate.
	LegacyGatePrefix = "target-health.alb.ingress.k8s.aws/"
	// ALBController is the IngressClass spec.controller of the
	// controller's ALBs; ALBClassName the class name its docs use. Source:
	// https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/ingress_class/
	ALBController = "ingress.k8s.aws/alb"
	ALBClassName  = "alb"
	// NLBLoadBalancerClass is the Service spec.loadBalancerClass that hands
	// a Service to the controller as an NLB (service annotations page).
	NLBLoadBalancerClass = "service.k8s.aws/nlb"
	// ALBAnnotationPrefix and ServiceAnnotationPrefix begin the Ingress and
	// Service annotations the controller (and, for Services, the in-tree
	// cloud provider) reads (the annotations pages above).
	ALBAnnotationPrefix     = "alb.ingress.kubernetes.io/"
	ServiceAnnotationPrefix = "service.beta.kubernetes.io/"
	// IngressClassAnnotation is the legacy way to pick an Ingress's class;
	// DefaultClassAnnotation marks the cluster's default IngressClass.
	// Source: https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-class
	IngressClassAnnotation = "kubernetes.io/ingress.class"
	DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// AttrDeregistrationDelay and AttrIdleTimeout are the target group and
	// load balancer attribute keys of DeregistrationDelay and IdleTimeout;
	// AttrConnectionTermination the NLB target group key of
	// NLBConnectionTermination.
	AttrDeregistrationDelay   = "deregistration_delay.timeout_seconds"
	AttrIdleTimeout           = "idle_timeout.timeout_seconds"
	AttrConnectionTermination = "deregistration_delay.connection_termination.enabled"
	// AttrUnhealthyConnectionTermination is the NLB target group key of
	// NLBUnhealthyConnectionTermination.
	AttrUnhealthyConnectionTermination = "target_health_state.unhealthy.connection_termination.enabled"
	// The in-tree provider's Classic ELB annotations (aws.go): draining on
	// or off (strconv.ParseBool), its timeout and the idle timeout (whole
	// seconds), and the backend protocol (http or https make the ELB speak
	// HTTP to the nodes and pool keep-alive connections).
	CLBDrainingEnabledAnnotation = ServiceAnnotationPrefix + "aws-load-balancer-connection-draining-enabled"
	CLBDrainingTimeoutAnnotation = ServiceAnnotationPrefix + "aws-load-balancer-connection-draining-timeout"
	CLBIdleTimeoutAnnotation     = ServiceAnnotationPrefix + "aws-load-balancer-connection-idle-timeout"
	BackendProtocolAnnotation    = ServiceAnnotationPrefix + "aws-load-balancer-backend-protocol"
	// LBTypeAnnotation picks the Service's load balancer: "nlb" for the
	// in-tree provider's NLB, "external" or "nlb-ip" for the controller's
	// (aws_loadbalancer.go isNLB, isLBExternal; the controller's service
	// annotations page). NLBTargetGroupAttributesAnnotation sets the
	// controller NLB's target group attributes.
	LBTypeAnnotation                   = ServiceAnnotationPrefix + "aws-load-balancer-type"
	NLBTargetGroupAttributesAnnotation = ServiceAnnotationPrefix + "aws-load-balancer-target-group-attributes"
)
