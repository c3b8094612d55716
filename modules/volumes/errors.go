package volumes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

var (
	// ErrNoSuchVolume is the cause of every lookup of a volume that does
	// not exist (errdefs NotFound): "get <name>: no such volume", as
	// dockerd.
	ErrNoSuchVolume = errdefs.ErrNotFound.WithMessage("no such volume")
	// ErrVolumeInUse is the cause of a removal refused because the volume
	// is referenced (errdefs Conflict): "remove <name>: volume is in use -
	// [<ref>, …]", as dockerd.
	ErrVolumeInUse = errdefs.ErrConflict.WithMessage("volume is in use")
)

// OpError is the error of a volume operation, worded as dockerd's volume
// store: "<op> <name>: <cause>", followed by " - [<ref>, …]" when the
// references that blocked it are known ("remove data: volume is in use -
// [3f2a…]"). Its errdefs class is its cause's.
type OpError struct {
	// Op is the operation: "create", "get", "remove", "mount", "list".
	Op string
	// Name is the volume's name; empty when the operation has none.
	Name string
	// Err is the cause.
	Err error
	// Refs are the references (container IDs) involved, sorted.
	Refs []string
}

// Error returns the dockerd-worded message.
func (e *OpError) Error() string {
	s := e.Op
	if e.Name != "" {
		s += " " + e.Name
	}
	s += ": " + e.Err.Error()
	if len(e.Refs) > 0 {
		s += " - [" + strings.Join(e.Refs, ", ") + "]"
	}
	return s
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// invalidParam is an InvalidArgument (400) error with its cause's text.
type invalidParam struct{ error }

func (invalidParam) InvalidParameter() {}
func (e invalidParam) Unwrap() error   { return e.error }

// conflictError is a Conflict (409) error with its cause's text.
type conflictError struct{ error }

func (conflictError) Conflict()       {}
func (e conflictError) Unwrap() error { return e.error }

// notFoundError is a NotFound (404) error with its cause's text.
type notFoundError struct{ error }

func (notFoundError) NotFound()       {}
func (e notFoundError) Unwrap() error { return e.error }

// systemError is an Internal (500) error with its cause's text.
type systemError struct{ error }

func (systemError) System()         {}
func (e systemError) Unwrap() error { return e.error }

func invalidf(format string, args ...any) error {
	return invalidParam{fmt.Errorf(format, args...)}
}

// invalidFilter is a filter key or value the endpoint does not accept,
// worded as dockerd's: "invalid filter 'key'" or "invalid filter
// 'key=[v1 v2]'" (InvalidArgument).
type invalidFilter struct {
	key    string
	values []string
}

func (e invalidFilter) Error() string {
	msg := "invalid filter '" + e.key
	if e.values != nil {
		msg = fmt.Sprintf("%s=%s", msg, e.values)
	}
	return msg + "'"
}

func (invalidFilter) InvalidParameter() {}

// errNotFound reports whether err says the volume does not exist.
func errNotFound(err error) bool { return errors.Is(err, ErrNoSuchVolume) }
