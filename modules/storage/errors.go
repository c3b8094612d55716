package storage

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// classedError gives err an errdefs class without changing its message, so
// the API reports dockerd's wording with the right status.
type classedError struct {
	class error
	err   error
}

func (e classedError) Error() string   { return e.err.Error() }
func (e classedError) Unwrap() []error { return []error{e.class, e.err} }

// invalid classes err as errdefs.ErrInvalidArgument (HTTP 400).
func invalid(err error) error { return classedError{errdefs.ErrInvalidArgument, err} }

// invalidf is invalid(fmt.Errorf(format, args...)).
func invalidf(format string, args ...any) error { return invalid(fmt.Errorf(format, args...)) }

// conflictf is an errdefs.ErrConflict (HTTP 409) with the message given.
func conflictf(format string, args ...any) error {
	return classedError{errdefs.ErrConflict, fmt.Errorf(format, args...)}
}

// NoSuchImageError is the error for an image that does not exist: dockerd's
// "No such image: <name>", classed errdefs.ErrNotFound (HTTP 404).
type NoSuchImageError struct {
	// Name is the name or ID as the client gave it.
	Name string
}

func (e NoSuchImageError) Error() string { return "No such image: " + e.Name }

// Unwrap makes the error errdefs.ErrNotFound.
func (e NoSuchImageError) Unwrap() error { return errdefs.ErrNotFound }
