// Package config is wharfd's daemon configuration: the command line, the
// daemon.json file and the environment, merged, validated once and handed
// to the rest of the boot as a typed *Config. No other package reads flags,
// files or environment variables for configuration.
//
// Seed steps living here:
//
//   - 2.1 config: daemon.json merged with the flags (New, Load). The file
//     uses dockerd's key names and dockerd's rules: a key given both in the
//     file and as a flag is fatal, unknown keys are fatal, values must have
//     the right JSON type.
//   - 3.2 verify-settings: the cross-option checks dockerd makes before it
//     sets anything up (Verify): -b with --bip, icc=false with
//     iptables=false, the cgroup driver and a systemd cgroup parent.
//
// The reload stage (no seed step) re-reads daemon.json on SIGHUP and
// applies the reloadable subset of options, as dockerd does; see Live.
package config
