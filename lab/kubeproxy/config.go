package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab/alb"
	"github.com/rollsafe/rollsafe/timeline"
)

// Policy is a Service's externalTrafficPolicy.
type Policy string

const (
	// PolicyCluster (the Kubernetes default) lets every node forward to any
	// endpoint in the cluster.
	PolicyCluster Policy = "Cluster"
	// PolicyLocal lets a node forward only to endpoints on itself, and
	// gives the Service a health-check node port.
	PolicyLocal Policy = "Local"
)

// DefaultLag is how long a node takes to apply an endpoint change: kube-proxy's
// minSyncPeriod default (defaults.KubeProxyMinSyncPeriod, 1 s), the longest a
// change waits for the sync rate limiter. Watch delivery and rule-writing
// time come on top; no Kubernetes document gives a figure for them.
const DefaultLag = defaults.KubeProxyMinSyncPeriod

// Config describes one node's kube-proxy for one Service port. Durations are
// real durations: the lab scales them before they get here. Start from
// DefaultConfig.
type Config struct {
	// Name is the node's name. With PolicyLocal a node forwards only to
	// endpoints whose Node is this name.
	Name string
	// Listen is the NodePort: the node's loopback address and the Service's
	// node port ("127.0.2.1:30080"; port 0 picks one). Kubernetes allocates
	// node ports from 30000-32767 by default; the lab may use any.
	Listen string
	// HealthCheckListen is the healthCheckNodePort's address, the same
	// node address and another port. Only a Local Service has one; empty
	// runs none.
	HealthCheckListen string
	// Policy is the Service's externalTrafficPolicy (default Cluster).
	Policy Policy
	// Lag is how long after Update this node applies an endpoint change
	// (DefaultLag). Each node has its own.
	Lag time.Duration
	// Namespace and Service name the Service in the health check's answer.
	Namespace string
	Service   string
	// Seed makes the random endpoint choice repeatable.
	Seed uint64
	// DialPod opens the node's connection to a pod (nil: a plain TCP
	// dial). The lab can pass one that makes a deleted pod's IP go
	// unanswered, as lab/alb's SetReachable does for ip targets.
	DialPod func(ctx context.Context, network, addr string) (net.Conn, error)
	// Sink receives a record each time the node applies an endpoint change
	// (Kind event, Source lab). It is called from the node's timers, one
	// at a time per node; a sink shared between nodes must be safe for
	// concurrent use. After its first error the node sends nothing more:
	// Err and Close return that error.
	Sink timeline.Sink
	// Scenario is copied into every record.
	Scenario string
}

// DefaultConfig returns the defaults for node name listening on listen.
func DefaultConfig(name, listen string) Config {
	return Config{
		Name: name, Listen: listen, Policy: PolicyCluster, Lag: DefaultLag,
		Namespace: "default", Service: "rollsafe-lab", Seed: 1,
	}
}

// validate says what is wrong with c, naming the field.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Name == "" {
		bad("kubeproxy: Name is empty")
	}
	if err := alb.CheckLoopback(c.Listen); err != nil {
		bad("kubeproxy: Listen %q: %v", c.Listen, err)
	}
	switch c.Policy {
	case PolicyCluster:
		if c.HealthCheckListen != "" {
			bad("kubeproxy: HealthCheckListen %q: a Cluster Service has no healthCheckNodePort", c.HealthCheckListen)
		}
	case PolicyLocal:
		if c.HealthCheckListen != "" {
			if err := alb.CheckLoopback(c.HealthCheckListen); err != nil {
				bad("kubeproxy: HealthCheckListen %q: %v", c.HealthCheckListen, err)
			}
		}
	default:
		bad("kubeproxy: Policy %q: want %q or %q", c.Policy, PolicyCluster, PolicyLocal)
	}
	if c.Lag < 0 {
		bad("kubeproxy: Lag must be >= 0, got %v", c.Lag)
	}
	return errors.Join(errs...)
}
