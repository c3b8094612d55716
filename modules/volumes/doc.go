// Package volumes is seed step 3.15 volumes: the volume service with the
// local driver, and the parsing and validation of container mount
// specifications.
//
// A local volume lives in <data root>/volumes/<name>: its data in _data,
// its metadata (driver, labels, options, creation time, scope) in
// volume.json, written atomically. A volume is created in a staging
// directory and renamed into place, and removed by renaming it aside
// first, so a crash never leaves half a volume behind; leftovers are
// cleared at the next start. Driver options type, device and o mount a
// filesystem (a tmpfs, a bind of a host directory, …) on _data while the
// volume is mounted by at least one user, as dockerd's local driver.
//
// The service counts references (containers that use a volume, Acquire
// and Release) and mounts (running users, Mount/MountFor and Unmount): a
// referenced volume cannot be removed or pruned. References live in
// memory only; the container engine acquires its containers' volumes
// again at boot. Populate is dockerd's copy-up: an empty volume mounted
// over a directory of a container's image gets that directory's content,
// owner and mode.
//
// ParseBind, ParseMount, ParseTmpfs, ParseVolumesFrom and ParseMounts turn
// the -v, --mount, --tmpfs and --volumes-from forms of a container's
// configuration into validated MountPoints, with dockerd's error texts.
package volumes
