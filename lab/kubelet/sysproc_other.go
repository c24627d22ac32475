//go:build unix && !linux

package kubelet

import "syscall"

// sysProcAttr: own process group. Outside Linux there is no Pdeathsig, so a
// crash of the parent (not a clean stop or context cancel) can leave children.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
