package config

import (
	"errors"
	"fmt"
	"strings"
)

// Verified is the token of stage 3.2 verify-settings: stages that rely on
// the cross-option checks take it.
type Verified struct{}

// Verify is stage 3.2 verify-settings: the checks dockerd's
// verifyDaemonSettings makes across options, with its wording. It refuses
// -b with --bip, icc=false with iptables=false (icc=false is enforced by
// packet filter rules), a cgroup driver other than cgroupfs or systemd,
// and with systemd a cgroup parent that is not a slice ("xxx.slice").
func Verify(c *Config) (Verified, error) {
	if c.Bridge != "" && c.BIP != "" {
		return Verified{}, errors.New("You specified -b & --bip, mutually exclusive options. Please specify only one")
	}
	if !c.ICC && !c.IPTables {
		return Verified{}, errors.New("You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true")
	}
	driver := c.CgroupDriver()
	switch driver {
	case CgroupDriverCgroupfs, CgroupDriverSystemd:
	case "none":
		return Verified{}, fmt.Errorf("native.cgroupdriver option %s is internally used and cannot be specified manually", driver)
	default:
		return Verified{}, fmt.Errorf("native.cgroupdriver option %s not supported", driver)
	}
	if driver == CgroupDriverSystemd && c.CgroupParent != "" {
		if len(c.CgroupParent) <= 6 || !strings.HasSuffix(c.CgroupParent, ".slice") {
			return Verified{}, errors.New(`cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`)
		}
	}
	return Verified{}, nil
}
