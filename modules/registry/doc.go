// Package registry is seed step 2.3 registry-service: how the daemon
// reaches registries. It holds the registry configuration — Docker Hub
// mirrors (registry-mirrors), registries reached without TLS verification
// or over plain HTTP (insecure-registries, host[:port] or CIDR, with
// 127.0.0.0/8 always insecure as in dockerd) and the Docker Hub index
// (docker.io, served by registry-1.docker.io) — reloads it on SIGHUP,
// decodes the credentials clients send in X-Registry-Auth, and checks
// them for POST /auth.
//
// The registry protocol itself is go.podman.io/image/v5's docker
// transport: the service hands out the types.SystemContext an operation
// on one registry needs, with a registries.conf of its own (mirrors) so
// that no host-wide containers configuration or credential file leaks in.
package registry
