package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// versionKey is the request-context key of the negotiated API version.
type versionKey struct{}

// withAPIVersion returns ctx carrying the negotiated API version v.
func withAPIVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// APIVersion returns the API version negotiated for the request whose
// context is ctx: the /vX.Y of its path, or the newest version the daemon
// speaks when the path has none; "" outside an API request. Handlers use
// it to shape responses for older clients, with VersionLess.
func APIVersion(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// CompareVersions compares two dotted API versions ("1.44") part by part
// as numbers, a missing part counting as 0, as dockerd's versions.compare:
// -1 when a < b, 0 when equal, +1 when a > b. A part that is not a number
// counts as 0.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// VersionLess reports whether API version v is older than other
// ("1.43" < "1.44").
func VersionLess(v, other string) bool { return CompareVersions(v, other) < 0 }

// splitVersion strips a leading /vX.Y (digits and dots) from an API
// path, as dockerd's router matches /v{version:[0-9.]+}: it returns the
// rest of the path ("/" when nothing follows) and the version, or the
// path unchanged and "" when it has none.
func splitVersion(path string) (rest, version string) {
	if len(path) < 3 || path[0] != '/' || path[1] != 'v' {
		return path, ""
	}
	i := 2
	for i < len(path) && (path[i] == '.' || (path[i] >= '0' && path[i] <= '9')) {
		i++
	}
	if i == 2 || (i < len(path) && path[i] != '/') {
		return path, ""
	}
	rest = path[i:]
	if rest == "" {
		rest = "/"
	}
	return rest, path[2:i]
}

// VersionError is the error of a request whose API version the daemon does
// not serve; it is InvalidArgument (400) and reads as dockerd's: "client
// version 1.11 is too old. Minimum supported API version is 1.40, please
// upgrade your client to a newer version" or "client version 9.99 is too
// new. Maximum supported API version is 1.56".
type VersionError struct {
	// Version is the version the client asked for.
	Version string
	// Min is set when Version is below the minimum, Max when above the
	// maximum.
	Min, Max string
}

func (e *VersionError) Error() string {
	if e.Min != "" {
		return fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", e.Version, e.Min)
	}
	return fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", e.Version, e.Max)
}

// InvalidParameter classifies the error as InvalidArgument (400).
func (*VersionError) InvalidParameter() {}

// checkVersion returns the version a request is served at: asked, or max
// when asked is ""; or a *VersionError when asked is outside [min, max].
func checkVersion(asked, minV, maxV string) (string, error) {
	if asked == "" {
		return maxV, nil
	}
	if VersionLess(asked, minV) {
		return "", &VersionError{Version: asked, Min: minV}
	}
	if CompareVersions(asked, maxV) > 0 {
		return "", &VersionError{Version: asked, Max: maxV}
	}
	return asked, nil
}
