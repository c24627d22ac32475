package kubeproxy

import (
	"encoding/json"
	"net"
	"net/http"
)

// healthServer is a Local Service's health-check node port on one node.
type healthServer struct {
	ln  net.Listener
	srv *http.Server
}

func startHealth(listen string, h http.HandlerFunc) (*healthServer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	hs := &healthServer{ln: ln, srv: &http.Server{Handler: h}}
	// Serve returns ErrServerClosed at close. Any other end leaves the port
	// unanswered, and the load balancer's check fails as it would against a
	// node whose kube-proxy died.
	go hs.srv.Serve(ln)
	return hs, nil
}

func (hs *healthServer) addr() string { return hs.ln.Addr().String() }

func (hs *healthServer) close() { hs.srv.Close() }

// healthAnswer is the JSON body kube-proxy's service health server writes.
type healthAnswer struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// serveHealth answers any path, as kube-proxy's handler does: 200 while the
// node has a local Ready endpoint, 503 otherwise. Terminating endpoints do
// not count even while they serve, so a node whose pods are all terminating
// fails its check while it still forwards to them. serviceProxyHealthy is
// always true: the stand-in has no sync loop that could fall behind.
func (n *Node) serveHealth(w http.ResponseWriter, _ *http.Request) {
	n.mu.Lock()
	count := n.view.localReady
	n.mu.Unlock()
	var a healthAnswer
	a.Service.Namespace, a.Service.Name = n.cfg.Namespace, n.cfg.Service
	a.LocalEndpoints, a.ServiceProxyHealthy = count, true
	body, _ := json.MarshalIndent(a, "", "\t") // a struct of strings, ints and bools always marshals
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if count > 0 {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write(body)
}
