package cluster

import (
	"errors"
	"net/netip"
	"sync"
)

// ipam hands out pod addresses 127.0.x.y (y in 1..254) in sequence and
// never hands out one still held by a pod, terminating or not: sequential
// allocation also keeps a freed address out of use as long as possible, so
// late packets for an old pod never reach a new one.
type ipam struct {
	next  netip.Addr
	first netip.Addr
	used  map[netip.Addr]bool
}

func newIPAM(first netip.Addr) *ipam {
	if !first.IsValid() {
		first = netip.AddrFrom4([4]byte{127, 0, 1, 1})
	}
	return &ipam{next: first, first: first, used: map[netip.Addr]bool{}}
}

func (a *ipam) allocate() (netip.Addr, error) {
	for range 1 << 16 {
		ip := a.next
		a.next = step(a.next, a.first)
		if !a.used[ip] {
			a.used[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, errors.New("no free pod address left in 127.0.0.0/16")
}

func (a *ipam) release(ip netip.Addr) { delete(a.used, ip) }

// step moves to the next 127.0.x.y with y in 1..254, wrapping to first.
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

// NewIPAM hands out addresses from first (127.0.1.1 when zero) onwards.
func NewIPAM(first netip.Addr) *IPAM { return &IPAM{a: newIPAM(first)} }

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
