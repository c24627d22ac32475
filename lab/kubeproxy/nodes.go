package kubeproxy

import "errors"

// Nodes is every node's kube-proxy for one Service: what the EndpointSlice
// watch reaches, each node then applying it after its own Lag.
type Nodes []*Node

// Update hands every node the same snapshot.
func (ns Nodes) Update(eps []Endpoint) {
	for _, n := range ns {
		n.Update(eps)
	}
}

// Close closes every node and joins their errors.
func (ns Nodes) Close() error {
	var errs []error
	for _, n := range ns {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
