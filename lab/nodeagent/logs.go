package nodeagent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/lab/kubelet"
)

// Pod logs, as a kubelet serves them: every pod's stdout and stderr go to one
// file (interleaved, as a container runtime's log does), and the API server's
// pods/log proxies GET /containerLogs/{namespace}/{pod}/{container} to the
// node's kubelet endpoint (Node status daemonEndpoints.kubeletEndpoint.port
// on the node's address). follow=true streams until the container exits;
// the other pods/log options (tailLines, sinceSeconds, timestamps,
// limitBytes, previous) are not honoured: the whole log is sent. A log
// lives as long as the pod does on this node.
//
// The API server reaches the endpoint over TLS without a client
// certificate and, without --kubelet-certificate-authority, without
// verifying the server's: the certificate here is self-signed, made at
// start, and the endpoint listens on loopback only.

// followPoll is how often a follower looks for more output: the child
// writes the file directly, so no write can notify it.
const followPoll = 20 * time.Millisecond

// logServer is the node's kubelet endpoint for pods/log.
type logServer struct {
	a   *Agent
	dir string
	ln  net.Listener
	srv *http.Server
}

func startLogServer(a *Agent) (*logServer, error) {
	dir, err := os.MkdirTemp("", "rollsafe-nodeagent-logs-")
	if err != nil {
		return nil, err
	}
	cert, err := selfSigned()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &logServer{a: a, dir: dir, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serve)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *logServer) port() int32 { return int32(s.ln.Addr().(*net.TCPAddr).Port) }

func (s *logServer) close() {
	s.srv.Close()
	os.RemoveAll(s.dir)
}

// create opens a new log file for one pod; the caller closes it.
func (s *logServer) create(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
}

func (s *logServer) serve(w http.ResponseWriter, req *http.Request) {
	r, kp := s.a.lookup(req.PathValue("namespace"), req.PathValue("pod"))
	if r == nil || r.logPath == "" || req.PathValue("container") != r.container {
		http.Error(w, "no such pod or container on this node", http.StatusNotFound)
		return
	}
	f, err := os.Open(r.logPath)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain")
	follow := req.URL.Query().Get("follow") == "true"
	if err := copyLog(w, f, func() bool { return !follow || exited(kp) }, req.Context().Done()); err != nil {
		return // the client went away
	}
}

// copyLog copies f to w, flushing as it goes; at the end of the file it
// stops once done says so (checked before the last read, so output written
// before the exit is never cut), or when the client is gone.
func copyLog(w http.ResponseWriter, f *os.File, done func() bool, gone <-chan struct{}) error {
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		last := done()
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) || n == 0 {
				break
			}
			if err != nil {
				return err
			}
		}
		if fl != nil {
			fl.Flush()
		}
		if last {
			return nil
		}
		select {
		case <-gone:
			return errors.New("client gone")
		case <-time.After(followPoll):
		}
	}
}

// exited says the container's process is gone for good (or never
// started): its log is complete. A pod whose restartPolicy may start it
// again is not in a terminal phase, so a follower keeps waiting.
func exited(kp *kubelet.Pod) bool {
	if kp == nil {
		return true
	}
	select {
	case <-kp.Done():
		return true
	default:
	}
	ph := kp.Status().Status.Phase
	return kp.Pid() == 0 && (ph == corev1.PodSucceeded || ph == corev1.PodFailed)
}

// lookup finds the pod this node runs by namespace and name, and its
// process (nil when it could not start, or has not been started yet).
func (a *Agent) lookup(ns, name string) (*podRun, *kubelet.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.pods {
		if r.ns == ns && r.name == name {
			return r, r.kp
		}
	}
	return nil, nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "rollsafe-nodeagent"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
