package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// waitHTTP polls url until it answers 200, the component exits, or ctx ends.
// With cfg the request carries the admin credentials and verifies the
// apiserver's certificate; without, it is a plain health probe, and for https
// the component's self-generated certificate is not verified (loopback only,
// and only /healthz is read).
func (cp *ControlPlane) waitHTTP(ctx context.Context, name, url string, cfg *rest.Config) error {
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	if cfg != nil {
		var err error
		if rt, err = rest.TransportFor(cfg); err != nil {
			return err
		}
	}
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	proc := cp.procs[len(cp.procs)-1]
	last := "no answer yet"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := proc.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %v (last: %s)\n%s", name, url, ctx.Err(), last, proc.logTail())
		case <-tick.C:
		}
	}
}
