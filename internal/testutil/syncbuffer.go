// Package testutil holds small helpers several packages' tests share.
package testutil

import (
	"strings"
	"sync"
)

// SyncBuffer is an io.Writer a test can read while other goroutines (a
// load balancer's access log, a child process's output) write to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
