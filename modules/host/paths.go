package host

// Paths are the host files and commands the host stages read or run,
// outside the daemon's own data root, exec root and pidfile. The host-paths
// stage provides the real ones (DefaultPaths); tests replace them with
// temporary files (fx.Replace, or by calling the constructors directly) so
// that they never read or change the host's own.
type Paths struct {
	// Passwd and Group are the user and group databases the
	// --userns-remap user and group are looked up in (/etc/passwd,
	// /etc/group).
	Passwd string
	Group  string
	// Subuid and Subgid are the subordinate ID files, lines of
	// name:start:count (/etc/subuid, /etc/subgid).
	Subuid string
	Subgid string
	// UserAdd is the command that creates the dockremap system user for
	// --userns-remap=default. Empty picks adduser, else useradd, from
	// PATH, as dockerd does. A command named adduser gets adduser's
	// arguments, any other useradd's.
	UserAdd string
	// AppArmorEnabled is the kernel's AppArmor switch, "Y" when AppArmor
	// is on (/sys/module/apparmor/parameters/enabled).
	AppArmorEnabled string
	// AppArmorParser is the profile loader, a path or a name looked up
	// in PATH (apparmor_parser).
	AppArmorParser string
}

// DefaultPaths is the host-paths stage: the host's real files.
func DefaultPaths() Paths {
	return Paths{
		Passwd:          "/etc/passwd",
		Group:           "/etc/group",
		Subuid:          "/etc/subuid",
		Subgid:          "/etc/subgid",
		AppArmorEnabled: "/sys/module/apparmor/parameters/enabled",
		AppArmorParser:  "apparmor_parser",
	}
}
