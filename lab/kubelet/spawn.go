package kubelet

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// All children are started from one goroutine locked to one OS thread that
// never exits: on Linux, Pdeathsig fires when the thread that forked the
// child dies, and Go may otherwise fork from a thread that goes away.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// start starts cmd in its own process group, tied to our life.
func start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = sysProcAttr()
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as we do
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, done: done}
	if err := <-done; err != nil {
		return err
	}
	guardGroup(cmd.Process.Pid)
	return nil
}

// killGroup sends SIGKILL to every process in the group led by pid. A group
// that is already gone is not an error. Call it once the leader has been
// reaped to end the group for good: see endGroup.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitCode returns the container-style exit code: the process's own code, or
// 128+signal when a signal ended it (137 after SIGKILL, 143 after SIGTERM).
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// endGroup kills what is left of a group whose leader we reaped and tells
// the guard to forget it.
func endGroup(pid int) {
	_ = killGroup(pid)
	releaseGroup(pid)
}
