package lab

import (
	"os"
	"os/exec"
	"sync"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
	"github.com/rollsafe/rollsafe/timeline"
)

var lookPath = exec.LookPath

// sinks are the files one lab run writes: the NDJSON timeline and the
// access log — always, to temporary files when --record or --access-log is
// not given, since the HTML report is built from both.
type sinks struct {
	recordPath, accessPath string
	tempRecord, tempAccess bool
	w                      *timeline.Writer
	access                 *os.File // the ALB stand-in buffers its own lines
	once                   sync.Once
	err                    error
}

func openSinks(o *options) (*sinks, error) {
	s := &sinks{recordPath: o.record, accessPath: o.accessLog}
	var err error
	if s.recordPath == "" {
		if s.recordPath, err = tempFile("rollsafe-lab-*.ndjson"); err != nil {
			return nil, err
		}
		s.tempRecord = true
	}
	if s.accessPath == "" {
		if s.accessPath, err = tempFile("rollsafe-lab-*.log"); err != nil {
			return nil, err
		}
		s.tempAccess = true
	}
	if s.w, err = timeline.Create(s.recordPath); err != nil {
		return nil, cmdutil.FileFlagError("--record", s.recordPath, err)
	}
	if s.access, err = os.Create(s.accessPath); err != nil {
		s.w.Close()
		return nil, cmdutil.FileFlagError("--access-log", s.accessPath, err)
	}
	return s, nil
}

func tempFile(pattern string) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), nil
}

// write records r; its error (a full disk) stops the lab run, which
// returns it.
func (s *sinks) write(r *timeline.Record) error { return s.w.Write(r) }

// close flushes and closes the files once.
func (s *sinks) close() error {
	s.once.Do(func() {
		s.err = s.w.Close()
		if s.access != nil {
			if err := s.access.Close(); err != nil && s.err == nil {
				s.err = err
			}
		}
	})
	return s.err
}

// inputs are the files the HTML report is built from: the timeline, and the
// access log unless it is empty (an NLB writes none; report refuses an
// empty file as no input).
func (s *sinks) inputs() []string {
	in := []string{s.recordPath}
	if st, err := os.Stat(s.accessPath); err == nil && st.Size() > 0 {
		in = append(in, s.accessPath)
	}
	return in
}

// cleanup removes the files that were only temporary.
func (s *sinks) cleanup() {
	s.close()
	if s.tempRecord {
		os.Remove(s.recordPath)
	}
	if s.tempAccess {
		os.Remove(s.accessPath)
	}
}
