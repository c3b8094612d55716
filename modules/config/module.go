package config

import "github.com/wharfd/wharfd/pipeline"

// Module declares the configuration stages: 2.1 config, 3.2
// verify-settings and the SIGHUP reload.
var Module = pipeline.Module("config",
	pipeline.Stage{Step: "2.1", Name: "config", Doc: "daemon.json merged with the flags, conflicts refused, validated", Ctor: New},
	pipeline.Stage{Step: "3.2", Name: "verify-settings", Doc: "cross-option checks: -b/--bip, icc/iptables, cgroup driver and parent", Ctor: Verify},
	pipeline.Stage{Name: "reload", Doc: "re-reads daemon.json on SIGHUP and applies the reloadable options", Ctor: NewLive},
)
