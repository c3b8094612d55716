package host

import (
	"errors"
	"os"
)

// Privileged is the token of stage 3.4 root-check: the daemon runs with
// effective uid 0. Stages that change the host take it, directly or
// through the pidfile, so that nothing is touched before the check.
type Privileged struct{}

// ErrNotRoot is returned by CheckRoot when the daemon does not run as
// root; the wording is dockerd's, with the daemon's own name.
var ErrNotRoot = errors.New("wharfd needs to be started with root privileges")

// CheckRoot is stage 3.4 root-check: it returns ErrNotRoot unless the
// effective uid is 0. It touches no file.
func CheckRoot() (Privileged, error) {
	return checkRoot(os.Geteuid())
}

func checkRoot(euid int) (Privileged, error) {
	if euid != 0 {
		return Privileged{}, ErrNotRoot
	}
	return Privileged{}, nil
}
