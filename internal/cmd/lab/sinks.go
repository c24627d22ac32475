package lab

import (
	"os"
	"os/exec"
	"sync"

	"github.com/rollsafe/rollsafe/timeline"
)

var lookPath = exec.LookPath

// sinks are the files one lab run writes: the NDJSON timeline (always, to a
// temporary file when --record is not given, since the HTML report is
// built from it) and the access log.
type sinks struct {
	recordPath string
	temp       bool
	w          *timeline.Writer
	access     *os.File // the ALB stand-in buffers its own lines
	once       sync.Once
	err        error
}

func openSinks(o *options) (*sinks, error) {
	s := &sinks{recordPath: o.record}
	if s.recordPath == "" {
		f, err := os.CreateTemp("", "rollsafe-lab-*.ndjson")
		if err != nil {
			return nil, err
		}
		f.Close()
		s.recordPath, s.temp = f.Name(), true
	}
	w, err := timeline.Create(s.recordPath)
	if err != nil {
		return nil, err
	}
	s.w = w
	if o.accessLog != "" {
		f, err := os.Create(o.accessLog)
		if err != nil {
			w.Close()
			return nil, err
		}
		s.access = f
	}
	return s, nil
}

func (s *sinks) write(r *timeline.Record) { s.w.Write(r) }

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

// cleanup removes the timeline when it was only a temporary file.
func (s *sinks) cleanup() {
	s.close()
	if s.temp {
		os.Remove(s.recordPath)
	}
}
