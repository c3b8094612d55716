package volumes

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/docker/go-units"
)

const (
	// DriverName is the name of the only volume driver, "local".
	DriverName = "local"
	// LocalScope is the scope of local volumes, "local".
	LocalScope = "local"
	// AnonymousLabel is the label set on a volume created without a name
	// (with an empty value), as dockerd: prune removes only these unless
	// asked for all.
	AnonymousLabel = "com.docker.volume.anonymous"

	// restrictedNameChars is dockerd's description of valid names.
	restrictedNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`
)

// namePattern is dockerd's RestrictedNamePattern: a volume's name is its
// directory's, so it must not let the path escape the volumes directory.
var namePattern = regexp.MustCompile(`^` + restrictedNameChars + `+$`)

// validateName checks a volume name as dockerd's local driver, with its
// texts (InvalidArgument).
func validateName(name string) error {
	if len(name) == 1 {
		return invalidParam{errors.New("volume name is too short, names should be at least two alphanumeric characters")}
	}
	if !namePattern.MatchString(name) {
		return invalidf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, restrictedNameChars)
	}
	return nil
}

// validOpts are the local driver's options: type (filesystem type, as
// mount -t), device (what to mount), o (mount options, as mount -o) and
// size (a quota, which needs quota support this daemon does not have).
var validOpts = map[string]bool{"type": true, "device": true, "o": true, "size": true}

// mandatoryOpts are the options each option needs beside it, checked in
// this order.
var mandatoryOpts = []struct {
	opt      string
	requires []string
}{
	{"device", []string{"type"}},
	{"type", []string{"device"}},
	{"o", []string{"device", "type"}},
}

// validateOpts checks the local driver's options as dockerd, with its
// texts (InvalidArgument): an unknown option (`invalid option: "foo"`),
// a CIFS device URL with a port, a size (no quota support here), an
// option without the ones it needs (`missing required option: "device"`).
func validateOpts(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	for opt := range opts {
		if !validOpts[opt] {
			return invalidf("invalid option: %q", opt)
		}
	}
	if opts["type"] == "cifs" && opts["device"] != "" {
		u, err := url.Parse(opts["device"])
		if err != nil {
			return invalidf("error parsing mount device url: %w", err)
		}
		if u.Port() != "" {
			return invalidParam{errors.New("port not allowed in CIFS device URL, include 'port' in 'o='")}
		}
	}
	if val, ok := opts["size"]; ok {
		size, err := units.RAMInBytes(val)
		if err != nil {
			return invalidParam{err}
		}
		if size > 0 {
			return invalidParam{errors.New("quota size requested but no quota support")}
		}
	}
	for _, m := range mandatoryOpts {
		if _, ok := opts[m.opt]; !ok {
			continue
		}
		for _, req := range m.requires {
			if _, ok := opts[req]; !ok {
				return invalidParam{fmt.Errorf("missing required option: %q", req)}
			}
		}
	}
	return nil
}
