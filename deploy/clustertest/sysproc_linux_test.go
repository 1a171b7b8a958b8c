package clustertest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the process when the test process
// dies, so that a test binary killed by its timeout leaves no nodes
// behind.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
