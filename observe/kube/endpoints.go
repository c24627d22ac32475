package kube

import (
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/rollsafe/rollsafe/timeline"
)

// Endpoint states, from the EndpointSlice conditions. The load balancer
// controller registers ready endpoints and deregisters terminating ones, so
// these are what it acted on.
const (
	EndpointReady              = "ready"               // ready (and serving, not terminating)
	EndpointServingTerminating = "serving-terminating" // terminating but still passing readiness
	EndpointTerminating        = "terminating"         // terminating and no longer serving
	EndpointNotReady           = "not-ready"           // listed, not ready, not terminating
	stateRemoved               = "removed"             // no longer in any slice of the service
)

// endpointState is one endpoint as one slice lists it.
type endpointState struct {
	object string
	state  string
	attrs  map[string]string
}

// sliceHandler follows endpoints rather than slices: the EndpointSlice
// controller moves endpoints between a service's slices, and a move is not
// news, so an endpoint is "removed" only once no slice of its service lists it.
func (w *watcher) sliceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { w.slice(nil, obj, initial) },
		UpdateFunc: func(old, obj any) { w.slice(old, obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			w.slice(obj, nil, false)
		},
	}
}

// slice handles a slice going from old to cur (either may be nil).
func (w *watcher) slice(old, cur any, initial bool) {
	oldS, _ := old.(*discoveryv1.EndpointSlice)
	curS, _ := cur.(*discoveryv1.EndpointSlice)
	s := curS
	if s == nil {
		s = oldS
	}
	if s == nil {
		return
	}
	before := w.sliceEndpoints(oldS)
	after := w.sliceEndpoints(curS)
	for key, st := range after {
		w.endpoint(key, s.Name, &st, initial)
	}
	for key := range before {
		if _, still := after[key]; !still {
			w.endpoint(key, s.Name, nil, false)
		}
	}
}

// endpoint records that slice now lists the endpoint key as st (nil: no longer).
func (w *watcher) endpoint(key, slice string, st *endpointState, initial bool) {
	w.mu.Lock()
	bySlice := w.endpoints[key]
	if st != nil {
		if bySlice == nil {
			bySlice = map[string]endpointState{}
			w.endpoints[key] = bySlice
		}
		bySlice[slice] = *st
	} else {
		if bySlice == nil {
			w.mu.Unlock()
			return
		}
		gone := bySlice[slice]
		delete(bySlice, slice)
		if len(bySlice) == 0 {
			delete(w.endpoints, key)
			// The endpoint keeps its last attributes, so the record says
			// where it was and what it was last.
			st = &endpointState{object: gone.object, state: stateRemoved, attrs: gone.attrs}
		} else {
			for _, other := range bySlice {
				st = &other
				break
			}
		}
	}
	w.mu.Unlock()
	w.record(observation{kind: timeline.KindEvent, key: key, object: st.object, state: st.state, attrs: st.attrs}, initial)
}

// sliceEndpoints lists the in-scope endpoints of s by key.
func (w *watcher) sliceEndpoints(s *discoveryv1.EndpointSlice) map[string]endpointState {
	if s == nil {
		return nil
	}
	service := s.Labels[discoveryv1.LabelServiceName]
	m := map[string]endpointState{}
	for _, ep := range s.Endpoints {
		object := ""
		if len(ep.Addresses) > 0 {
			object = ep.Addresses[0]
		}
		pod := ep.TargetRef != nil && ep.TargetRef.Kind == "Pod"
		if pod {
			object = ep.TargetRef.Name
		}
		key := "endpoint/" + s.Namespace + "/" + service + "/" + string(s.AddressType) + "/" + object
		if !w.endpointInScope(key, s.Namespace, object, pod) {
			continue
		}
		a := map[string]string{
			"resource": "endpoint", "namespace": s.Namespace, "service": service,
			"ready": boolAttr(ep.Conditions.Ready), "serving": boolAttr(ep.Conditions.Serving),
			"terminating": boolAttr(ep.Conditions.Terminating),
		}
		if len(ep.Addresses) > 0 {
			a["address"] = ep.Addresses[0]
		}
		if ep.NodeName != nil {
			a["node"] = *ep.NodeName
		}
		m[key] = endpointState{object: object, state: endpointStateOf(ep.Conditions), attrs: a}
	}
	return m
}

// endpointInScope: with a selector, an endpoint counts when it points at a
// selected pod; once followed it stays followed, even after the pod itself
// is gone from the API, so its removal is still recorded.
func (w *watcher) endpointInScope(key, namespace, object string, pod bool) bool {
	if w.selector.Empty() {
		return true
	}
	w.mu.Lock()
	_, followed := w.endpoints[key]
	w.mu.Unlock()
	return followed || (pod && w.podInScope(namespace, object))
}

func endpointStateOf(c discoveryv1.EndpointConditions) string {
	// Per the EndpointSlice API, a nil ready or serving means true, a nil
	// terminating false.
	ready, serving := c.Ready == nil || *c.Ready, c.Serving == nil || *c.Serving
	terminating := c.Terminating != nil && *c.Terminating
	switch {
	case terminating && serving:
		return EndpointServingTerminating
	case terminating:
		return EndpointTerminating
	case ready:
		return EndpointReady
	default:
		return EndpointNotReady
	}
}

func boolAttr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}
