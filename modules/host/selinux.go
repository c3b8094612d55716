package host

import (
	"github.com/opencontainers/selinux/go-selinux"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// SELinux is the value of stage 3.12 selinux: whether containers get
// SELinux labels. The stage is skipped, with the reason, when labelling
// is off.
type SELinux struct {
	// Enabled is true when --selinux-enabled is set and the host has
	// SELinux.
	Enabled bool

	off string
}

// SkipReason says why labelling is off; empty when it is on.
func (s SELinux) SkipReason() string {
	if s.Enabled {
		return ""
	}
	return s.off
}

// SELinuxParams are the inputs of stage 3.12 selinux.
type SELinuxParams struct {
	fx.In

	Config *config.Config
	Logger *zap.Logger
}

// NewSELinux is stage 3.12 selinux, as dockerd's: --selinux-enabled on a
// host with SELinux turns labelling on; on a host without it the daemon
// logs a warning and boots with labelling off. Without --selinux-enabled,
// go-selinux is told SELinux is disabled, so that the runtime and storage
// libraries apply no labels even on an SELinux host.
func NewSELinux(p SELinuxParams) SELinux {
	log := p.Logger.With(zap.String("module", "host"))
	if !p.Config.SELinuxEnabled {
		selinux.SetDisabled()
	}
	return decideSELinux(p.Config.SELinuxEnabled, selinux.GetEnabled(), log)
}

// decideSELinux is the decision of NewSELinux, given whether labelling
// was asked for and whether the host has SELinux.
func decideSELinux(want, hostHas bool, log *zap.Logger) SELinux {
	switch {
	case !want:
		return SELinux{off: "--selinux-enabled is not set"}
	case !hostHas:
		log.Warn("wharfd could not enable SELinux on the host system")
		return SELinux{off: "SELinux is not available on this host"}
	default:
		return SELinux{Enabled: true}
	}
}

// SecurityOptions returns the host's part of the security options that
// GET /info reports, in dockerd's order and form: "name=apparmor" when the
// default profile is loaded, "name=selinux" when labelling is on,
// "name=userns" when containers are remapped. The runtime adds seccomp
// and cgroupns.
func SecurityOptions(aa AppArmor, se SELinux, id Identity) []string {
	var opts []string
	if aa.Enabled() {
		opts = append(opts, "name=apparmor")
	}
	if se.Enabled {
		opts = append(opts, "name=selinux")
	}
	if id.Enabled() {
		opts = append(opts, "name=userns")
	}
	return opts
}
