// Package host prepares the host for the daemon: the checks and
// directories dockerd sets up before it opens any store, and the daemon's
// process-level duties.
//
// Seed steps living here (DESIGN §2):
//
//   - 3.4 root-check: the daemon runs as root (CheckRoot, Privileged).
//   - 3.5 userns-remap: the identity mapping of --userns-remap from
//     /etc/subuid and /etc/subgid, creating the dockremap user for
//     "default" (NewIdentity, Identity).
//   - 3.6 root-identity: the host uid/gid of the containers' root
//     (NewRootIdentity, RootIdentity).
//   - 3.7 data-root: the effective data root, <data-root>/<uid>.<gid> with
//     remapping, and the exec root (NewDataRoot, DataRoot, ExecRoot).
//   - 3.8 tmpdir: the daemon's temporary directory, exported as TMPDIR
//     (NewTmpDir, TmpDir).
//   - 3.9 apparmor: the default container profile wharfd-default, loaded
//     when the host supports AppArmor (NewAppArmor, AppArmor).
//   - 3.12 selinux: SELinux labelling on or off (NewSELinux, SELinux).
//   - 3.16 trust-key: the stable engine ID in <root>/engine-id, migrated
//     once from a legacy key.json (NewEngineID, EngineID).
//
// Stages with no seed step: host-paths (the host files the stages read,
// replaceable in tests), pidfile (written before any other file, removed
// on a clean exit), systemd-notify (sd_notify STATUS=, READY=1,
// RELOADING=1, STOPPING=1) and stack-dump (goroutine stacks on SIGUSR1).
package host
