package lab

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/timeline"
)

// podFacts is the process history of one pod, by IP, for attribution.
type podFacts struct {
	name        string
	terminating time.Time // deletion started
	sigterm     time.Time
	exited      time.Time
	killed      time.Time // SIGKILL sent at the grace deadline
	// deleted: termination finished, the pod object is gone; its IP leaves
	// the network IPReleaseDelay later.
	deleted time.Time
}

// processes keeps each pod's process history by IP, from the kubelet's own
// records: the same records whether the pods run in the embedded cluster or
// under the node agent on a real control plane.
type processes struct {
	mu   sync.Mutex
	byIP map[string]*podFacts
}

func newProcesses() *processes { return &processes{byIP: map[string]*podFacts{}} }

// observe takes one kubelet pod record.
func (ps *processes) observe(rec *timeline.Record) {
	ip := rec.Attrs["ip"]
	if rec.Kind != timeline.KindPod || ip == "" {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f := ps.byIP[ip]
	if f == nil || f.name != rec.Object {
		f = &podFacts{name: rec.Object} // a new pod on a reused IP
		ps.byIP[ip] = f
	}
	switch kubelet.State(rec.State) {
	case kubelet.StateTerminating:
		f.terminating = rec.Time
	case kubelet.StateSIGTERM:
		f.sigterm = rec.Time
	case kubelet.StateExited:
		f.exited = rec.Time
	case kubelet.StateKilled:
		f.killed = rec.Time
	case kubelet.StateDeleted:
		f.deleted = rec.Time
	}
}

// whileCurrent runs f, under the lock that observe takes, if the pod named
// name is still the last one seen at ip: a pod that got the IP since then
// makes it stale. The lock orders f against a new pod's records.
func (ps *processes) whileCurrent(ip, name string, f func()) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if cur := ps.byIP[ip]; cur != nil && cur.name == name {
		f()
	}
}

// facts returns a copy of what is known of the pod at ip.
func (ps *processes) facts(ip string) (podFacts, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f, ok := ps.byIP[ip]
	if !ok {
		return podFacts{}, false
	}
	return *f, true
}

func splitTarget(t string) (ip string, port int, err error) {
	h, p, err := net.SplitHostPort(t)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	return h, port, err
}
