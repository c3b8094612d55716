package host

import "github.com/wharfd/wharfd/pipeline"

// Module declares the host preparation stages.
var Module = pipeline.Module("host",
	pipeline.Stage{Name: "host-paths", Doc: "host files the host stages read (/etc/subuid, AppArmor's sysfs flag, …)", Ctor: DefaultPaths},
	pipeline.Stage{Step: "3.4", Name: "root-check", Doc: "the daemon runs as root", Ctor: CheckRoot},
	pipeline.Stage{Name: "pidfile", Doc: "pidfile written before any other file, refused while another daemon lives; removed on exit", Ctor: NewPidfile},
	pipeline.Stage{Name: "systemd-notify", Doc: "sd_notify: STATUS= while booting, READY=1, RELOADING=1, STOPPING=1", Ctor: NewNotifier},
	pipeline.Stage{Step: "3.5", Name: "userns-remap", Doc: "identity mapping of --userns-remap from /etc/subuid and /etc/subgid", Ctor: NewIdentity},
	pipeline.Stage{Step: "3.6", Name: "root-identity", Doc: "host uid/gid of the containers' root", Ctor: NewRootIdentity},
	pipeline.Stage{Step: "3.7", Name: "data-root", Doc: "effective data root (<data-root>/<uid>.<gid> when remapped) and exec root", Ctor: NewDataRoot},
	pipeline.Stage{Step: "3.8", Name: "tmpdir", Doc: "<root>/tmp (or DOCKER_TMPDIR), exported as TMPDIR", Ctor: NewTmpDir},
	pipeline.Stage{Step: "3.9", Name: "apparmor", Doc: "default container profile wharfd-default loaded, or skipped", Ctor: NewAppArmor},
	pipeline.Stage{Step: "3.12", Name: "selinux", Doc: "SELinux labelling on or off", Ctor: NewSELinux},
	pipeline.Stage{Step: "3.16", Name: "trust-key", Doc: "stable engine ID in <root>/engine-id (from a legacy key.json once)", Ctor: NewEngineID},
	pipeline.Stage{Name: "stack-dump", Doc: "goroutine stacks to <exec-root>/goroutine-stacks-*.log on SIGUSR1", Ctor: NewStackDumper},
)
