// Package storage holds the daemon's images and layers: seed steps 3.11
// graphdriver (the go.podman.io/storage store, overlay with a vfs
// fallback), 3.14 imagedb (image configs, manifests, history, sizes), 3.19
// reference-store (tags and digests ↔ image IDs, normalised with
// github.com/distribution/reference) and 3.20 migration (the on-disk schema
// version), plus the "images" stage that puts them behind one service for
// the image router and the container engine.
//
// Layers and image records are go.podman.io/storage's; archives (docker-
// archive, oci-archive) move in and out of the store through
// go.podman.io/image/v5's copy.Image and its containers-storage transport,
// so an image's ID is the digest of its config, as in dockerd.
package storage
