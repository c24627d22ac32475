package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// newTransport builds the one http.Transport a run uses. It dials itself so
// that dial and TLS errors carry their phase (see Classify), and it offers
// h2 by ALPN according to cfg.Protocol.
func newTransport(cfg *Config) *http.Transport {
	dial := dialer(cfg)
	var nextProtos []string
	switch cfg.Protocol {
	case ProtocolHTTP1:
		nextProtos = []string{"http/1.1"}
	case ProtocolHTTP2:
		nextProtos = []string{"h2"}
	default:
		nextProtos = []string{"h2", "http/1.1"}
	}
	dialTLS := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(raw, &tls.Config{
			ServerName:         host,
			InsecureSkipVerify: cfg.Insecure, //nolint:gosec // the user asked for --insecure
			NextProtos:         nextProtos,
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &phaseError{phase: phaseTLS, err: err}
		}
		if cfg.Protocol == ProtocolHTTP2 && tc.ConnectionState().NegotiatedProtocol != "h2" {
			raw.Close()
			return nil, &phaseError{phase: phaseTLS, err: fmt.Errorf("server did not negotiate h2 (got %q)", tc.ConnectionState().NegotiatedProtocol)}
		}
		return tc, nil
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(cfg.Protocol != ProtocolHTTP2)
	protos.SetHTTP2(cfg.Protocol != ProtocolHTTP1)
	return &http.Transport{
		Proxy:               nil, // probe the URL itself, never an environment proxy
		DialContext:         dial,
		DialTLSContext:      dialTLS,
		Protocols:           protos,
		DisableKeepAlives:   cfg.NewConn,
		DisableCompression:  true, // count the bytes that crossed the wire
		MaxIdleConns:        cfg.Connections,
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		IdleConnTimeout:     cfg.IdleConnTimeout,
		// No ResponseHeaderTimeout: the request context bounds the whole
		// exchange, so every timeout surfaces the same way.
	}
}

// dialer dials TCP, tagging its errors with their phase (see Classify).
func dialer(cfg *Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Resolver: cfg.Resolver}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); isInvalidName(host) {
			return nil, &phaseError{phase: phaseDial, err: &net.DNSError{
				Err: "no such host (RFC 6761: .invalid never resolves)", Name: host, IsNotFound: true}}
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &phaseError{phase: phaseDial, err: err}
		}
		return c, nil
	}
}

// isInvalidName spots names under the reserved TLD .invalid. RFC 6761 §6.4
// asks resolver libraries to answer them negatively at once; Go's does not,
// and asking a nameserver would send traffic for a name that cannot exist.
func isInvalidName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "invalid" || strings.HasSuffix(h, ".invalid")
}
