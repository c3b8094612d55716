// Package distribution moves images between registries and the store:
// seed steps 3.13 transfers (layer downloads and uploads bounded by
// max-concurrent-downloads and max-concurrent-uploads, downloads retried up
// to max-download-attempts with backoff and shared between pulls of the
// same blob) and 3.17 distribution-metadata (which blobs live in which
// repositories and how compressed and uncompressed digests relate, so that
// pushes skip what a registry has), plus the pull and push service behind
// POST /images/create?fromImage=… and POST /images/{name}/push.
//
// The registry protocol is go.podman.io/image/v5's docker transport, with
// the SystemContext of modules/registry (mirrors, insecure registries,
// the client's credentials). A pull runs in two steps, so that a failed
// or cancelled pull leaves nothing behind: the manifest's blobs are
// downloaded into a staging directory (Transfers), then stored in one go
// by the image service (storage.Images.PullIn), which removes whatever a
// failed store added. Progress is reported with dockerd's words, so the
// docker CLI draws its bars.
package distribution
