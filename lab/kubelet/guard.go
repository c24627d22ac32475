package kubelet

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Pdeathsig reaches only our direct children: a pod started as
// `sh -c 'npm start'` or a server that forks leaves grandchildren behind
// when we are SIGKILLed. The guard closes that gap: one small sh process,
// started once, that reads "add PGID" / "del PGID" lines from a pipe whose
// only writer is us. When we die, by any means, the kernel closes our end,
// the guard reads EOF and SIGKILLs every group still registered, then exits.
// It is not tied to us by Pdeathsig (it must outlive us by a moment), and
// it sits in its own process group so a terminal Ctrl-C does not reach it.
const guardScript = `pgs=""
while read -r op pg; do
  case $op in
    add) pgs="$pgs $pg" ;;
    del) n=""; for p in $pgs; do [ "$p" = "$pg" ] || n="$n $p"; done; pgs=$n ;;
  esac
done
for p in $pgs; do kill -9 "-$p" 2>/dev/null; done`

var guard struct {
	once sync.Once
	mu   sync.Mutex
	w    *os.File // nil when the guard could not start: Pdeathsig alone then
}

func startGuard() {
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return
	}
	r.Close()
	go func() { _ = cmd.Wait() }()
	guard.w = w
}

// guardGroup registers a process group to be killed if we die.
func guardGroup(pgid int) { guardLine("add", pgid) }

// releaseGroup unregisters a group we killed ourselves, so a later group
// that reuses the number is never touched.
func releaseGroup(pgid int) { guardLine("del", pgid) }

func guardLine(op string, pgid int) {
	guard.once.Do(startGuard)
	guard.mu.Lock()
	defer guard.mu.Unlock()
	if guard.w != nil {
		_, _ = fmt.Fprintf(guard.w, "%s %d\n", op, pgid)
	}
}
