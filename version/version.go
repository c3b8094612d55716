// Package version holds wharfd's build identity, set at link time by the
// Makefile (-ldflags -X) and read by `wharfd --version` and GET /version.
package version

// These are set with -ldflags "-X github.com/wharfd/wharfd/version.Version=…";
// they are variables only so the linker can set them, and nothing assigns
// them at run time.
var (
	// Version is the release, "0.1.0-dev" for a source build.
	Version = "0.1.0-dev"
	// GitCommit is the short commit the binary was built from.
	GitCommit = "unknown"
	// BuildTime is the build's RFC 3339 time.
	BuildTime = ""
)

// APIVersion is the newest Docker Engine API version wharfd speaks.
const APIVersion = "1.56"

// DefaultMinAPIVersion is the oldest API version served unless
// min-api-version or DOCKER_MIN_API_VERSION lowers it (dockerd's default).
const DefaultMinAPIVersion = "1.40"
