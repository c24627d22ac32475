package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Readiness probes and preStop hooks share these actions, as in the kubelet.

// probeClient is the kubelet's prober client: no keep-alive (each probe is a
// fresh connection, so a probe never rides a connection the app is closing),
// no redirects followed (a 3xx is a success), TLS not verified.
var probeClient = &http.Client{
	Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe TLS either
		Proxy:             nil,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// httpGet performs an httpGet action against the pod. Success is a status in
// [200, 400). The body is drained (bounded) so the server sees a clean end.
func (p *Pod) httpGet(ctx context.Context, a *corev1.HTTPGetAction) error {
	hostPort, err := p.address(a.Host, a.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if a.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := a.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	url := scheme + "://" + hostPort + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/rollsafe-lab")
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if h.Name == "Host" {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// tcpSocket succeeds when a connection opens.
func (p *Pod) tcpSocket(ctx context.Context, a *corev1.TCPSocketAction) error {
	hostPort, err := p.address(a.Host, a.Port)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return err
	}
	return conn.Close()
}

// execAction runs the command on the host with the pod's environment, in its
// own process group, and kills the group when ctx ends. Non-zero exit fails.
func (p *Pod) execAction(ctx context.Context, a *corev1.ExecAction) error {
	if len(a.Command) == 0 {
		return errors.New("exec action has no command")
	}
	// No $(VAR) expansion here: Kubernetes expands command, args and env
	// only, not probe or hook commands.
	cmd := exec.Command(a.Command[0], a.Command[1:]...)
	cmd.Env = envList(p.env)
	cmd.Stdout, cmd.Stderr = p.opts.Stdout, p.opts.Stderr
	if err := start(cmd); err != nil {
		return err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		endGroup(cmd.Process.Pid) // nothing the hook forked outlives it
		return err
	case <-ctx.Done():
		_ = killGroup(cmd.Process.Pid)
		<-waited
		endGroup(cmd.Process.Pid)
		return ctx.Err()
	}
}

// sleepAction is the native lifecycle sleep: the kubelet itself waits.
func (p *Pod) sleepAction(ctx context.Context, a *corev1.SleepAction) error {
	t := time.NewTimer(p.opts.Scale.Seconds(a.Seconds))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// address is host:port for an httpGet or tcpSocket action: the action's
// host, or the pod's IP when it names none (as the kubelet does), and its
// port resolved by resolvePort.
func (p *Pod) address(host string, port intstr.IntOrString) (string, error) {
	n, err := p.resolvePort(port)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = p.opts.IP
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// resolvePort turns a probe or hook port (number or container port name)
// into the port to dial. A port that is the container's first declared
// containerPort is where the app listens in the lab: Options.Port.
func (p *Pod) resolvePort(port intstr.IntOrString) (int, error) {
	n := port.IntValue()
	if port.Type == intstr.String {
		n = 0
		for _, cp := range p.container.Ports {
			if cp.Name == port.StrVal {
				n = int(cp.ContainerPort)
			}
		}
		if n == 0 {
			return 0, fmt.Errorf("port %q: no container port has that name", port.StrVal)
		}
	}
	if len(p.container.Ports) > 0 && n == int(p.container.Ports[0].ContainerPort) {
		return p.opts.Port, nil
	}
	if n <= 0 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range", n)
	}
	return n, nil
}

// runProbe runs one readiness probe attempt with its timeout.
func (p *Pod) runProbe(ctx context.Context, pr *corev1.Probe) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Scale.Seconds(int64(nonZero(pr.TimeoutSeconds, defaultTimeoutSeconds))))
	defer cancel()
	switch h := pr.ProbeHandler; {
	case h.HTTPGet != nil:
		return p.httpGet(ctx, h.HTTPGet)
	case h.TCPSocket != nil:
		return p.tcpSocket(ctx, h.TCPSocket)
	case h.Exec != nil:
		return p.execAction(ctx, h.Exec)
	}
	return errors.New("probe has no handler")
}

// hook is the kind of the lifecycle handler h (the PreStop record's
// reason) and the action that runs it until it ends or ctx (the grace
// deadline) does: one switch, so the kind recorded is always the action run.
// validate has refused a tcpSocket hook, as the API server does.
func (p *Pod) hook(h *corev1.LifecycleHandler) (kind string, run func(context.Context) error) {
	switch {
	case h.Sleep != nil:
		return "sleep", func(ctx context.Context) error { return p.sleepAction(ctx, h.Sleep) }
	case h.Exec != nil:
		return "exec", func(ctx context.Context) error { return p.execAction(ctx, h.Exec) }
	case h.HTTPGet != nil:
		return "httpGet", func(ctx context.Context) error { return p.httpGet(ctx, h.HTTPGet) }
	}
	return "none", func(context.Context) error { return errors.New("hook has no handler") }
}

// validate rejects what the lab cannot run, before anything starts, with a
// message naming the field.
func validate(pod *corev1.Pod) error {
	c := &pod.Spec.Containers[0]
	if pr := c.ReadinessProbe; pr != nil {
		h := pr.ProbeHandler
		if h.GRPC != nil {
			return fmt.Errorf("container %s: readinessProbe.grpc is not supported by the lab", c.Name)
		}
		if h.HTTPGet == nil && h.TCPSocket == nil && h.Exec == nil {
			return fmt.Errorf("container %s: readinessProbe has no handler", c.Name)
		}
	}
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil {
		h := lc.PreStop
		if h.TCPSocket != nil {
			return fmt.Errorf("container %s: lifecycle.preStop.tcpSocket is not a supported lifecycle handler", c.Name)
		}
		if h.Sleep == nil && h.Exec == nil && h.HTTPGet == nil {
			return fmt.Errorf("container %s: lifecycle.preStop has no handler", c.Name)
		}
	}
	return nil
}
