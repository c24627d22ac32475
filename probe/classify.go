package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/rollsafe/rollsafe/timeline"
)

// phase says where in the life of a request an error happened. The dialers
// tag their errors with it, because the same io.EOF means "the server hung
// up on our request" after the handshake and "the TLS handshake failed"
// during it.
type phase string

const (
	phaseDial phase = "dial"
	phaseTLS  phase = "tls"
)

type phaseError struct {
	phase phase
	err   error
}

func (e *phaseError) Error() string { return string(e.phase) + ": " + e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// Classify maps the error of one request attempt to its failure class. The
// order matters: a timeout wins over everything (whatever was pending when
// the clock ran out), then name resolution, refusal, TLS, reset and EOF.
func Classify(err error) timeline.Class {
	if err == nil {
		return timeline.ClassOK
	}
	if isTimeout(err) {
		return timeline.ClassTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return timeline.ClassDNS
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return timeline.ClassConnRefused
	}
	if isReset(err) {
		return timeline.ClassConnReset
	}
	var pe *phaseError
	if errors.As(err, &pe) && pe.phase == phaseTLS || isTLS(err) {
		return timeline.ClassTLS
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		// net/http's own words for "the server closed the connection under
		// the request"; it does not wrap io.EOF in these.
		strings.Contains(err.Error(), "server closed idle connection") {
		return timeline.ClassEOF
	}
	return timeline.ClassOther
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isReset covers a RST from the peer and the EPIPE a write gets after one.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func isTLS(err error) bool {
	var (
		rh    tls.RecordHeaderError
		alert tls.AlertError
		cv    *tls.CertificateVerificationError
		ua    x509.UnknownAuthorityError
		hn    x509.HostnameError
		ci    x509.CertificateInvalidError
	)
	return errors.As(err, &rh) || errors.As(err, &alert) || errors.As(err, &cv) ||
		errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
