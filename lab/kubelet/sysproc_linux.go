package kubelet

import "syscall"

// sysProcAttr: own process group, and SIGKILL when our (never-exiting)
// spawning thread dies, i.e. when this process dies, even by SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
