package cluster

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// ipam hands out pod addresses 127.b.x.y (y in 1..254) in sequence and
// never hands out one still held by a pod, terminating or not: sequential
// allocation also keeps a freed address out of use as long as possible, so
// late packets for an old pod never reach a new one.
//
// Several labs may run on one machine at once (two terminals, parallel test
// packages), each with its pods on the same port: the default range starts
// at a random 127.b.1.1, and an address where something already listens on
// the pods' port is skipped rather than handed to a pod that would fail to
// bind — or, worse, pass its readiness probe against someone else's process.
type ipam struct {
	next  netip.Addr
	first netip.Addr
	port  int // the pods' port; 0: do not probe
	used  map[netip.Addr]bool
}

func newIPAM(first netip.Addr, port int) *ipam {
	if !first.IsValid() {
		first = netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), 1, 1})
	}
	return &ipam{next: first, first: first, port: port, used: map[netip.Addr]bool{}}
}

func (a *ipam) allocate() (netip.Addr, error) {
	for range 1 << 16 {
		ip := a.next
		a.next = step(a.next, a.first)
		if !a.used[ip] && a.free(ip) {
			a.used[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, errors.New("no free pod address left in " + a.first.String() + "/16")
}

// free says whether nothing listens on ip at the pods' port.
func (a *ipam) free(ip netip.Addr) bool {
	if a.port == 0 {
		return true
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(a.port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func (a *ipam) release(ip netip.Addr) { delete(a.used, ip) }

// step moves to the next address with y in 1..254, wrapping to first.
func step(ip, first netip.Addr) netip.Addr {
	b := ip.As4()
	b[3]++
	if b[3] == 255 {
		b[3] = 1
		b[2]++
		if b[2] == 0 {
			return first
		}
	}
	return netip.AddrFrom4(b)
}

// IPAM is the same pod address allocator, safe for concurrent use, for a
// node agent outside this package: one allocation policy for the embedded
// lab and for pods run on a real control plane.
type IPAM struct {
	mu sync.Mutex
	a  *ipam
}

// NewIPAM hands out addresses from first (a random 127.b.1.1 when zero)
// onwards, skipping any where something listens on port (0: no check).
func NewIPAM(first netip.Addr, port int) *IPAM { return &IPAM{a: newIPAM(first, port)} }

// Allocate returns the next address not held by a pod.
func (p *IPAM) Allocate() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.a.allocate()
}

// Release frees ip once its pod is gone.
func (p *IPAM) Release(ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.a.release(ip)
}
