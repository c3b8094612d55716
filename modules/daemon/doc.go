// Package daemon is the container engine: the container store and
// lifecycle on top of the runtime (modules/runtime) and the storage
// (modules/storage).
//
// Seed steps living here:
//
//   - 3.10 containers-dir: <data-root>/containers (NewContainersDir).
//   - daemon: the container store and lifecycle (New): create, start,
//     stop, kill, restart, pause, wait, remove, rename, update, exec,
//     attach, logs, top, stats, archive, with dockerd's rules, events
//     and error texts; restart policies; restore on boot and stop of
//     every container on shutdown.
//
// A container lives in <data-root>/containers/<id>/: config.v2.json (the
// Container record: config, state, names, paths) and hostconfig.json,
// each written atomically (temp file, fsync, rename), its json-file log
// <id>-json.log (rotated as <id>-json.log.1 … with max-size/max-file),
// and the hosts, hostname and resolv.conf files bind-mounted into it.
// Its writable layer is a go.podman.io/storage container with the same
// ID, mounted while it runs.
//
// A container started with --init runs the daemon's tini as PID 1
// (init.go); a container with a healthcheck has its probes run through
// exec while it runs, and its State.Health kept (health.go).
package daemon
