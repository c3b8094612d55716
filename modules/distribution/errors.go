package distribution

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
)

// classedError gives err an errdefs class without changing its message.
type classedError struct {
	class error
	err   error
}

func (e classedError) Error() string   { return e.err.Error() }
func (e classedError) Unwrap() []error { return []error{e.class, e.err} }

// pullError words a registry error of a pull as dockerd's
// translatePullError does: a denied, unauthorised or unknown repository
// is "pull access denied for <name>, repository does not exist or may
// require 'docker login': <registry's error>", an unknown manifest
// "manifest for <ref> not found: <registry's error>", both NotFound.
// Others keep go.podman.io/image's text, which names the registry.
func pullError(ctx context.Context, err error, ref reference.Named) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		switch ec.Code {
		case errcode.ErrorCodeDenied, errcode.ErrorCodeUnauthorized, v2.ErrorCodeNameUnknown:
			return classedError{errdefs.ErrNotFound, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %s",
				reference.FamiliarName(ref), ec.Error())}
		case v2.ErrorCodeManifestUnknown:
			return classedError{errdefs.ErrNotFound, fmt.Errorf("manifest for %s not found: %s", reference.FamiliarString(ref), ec.Error())}
		}
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return classedError{errdefs.ErrNotFound, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %v",
			reference.FamiliarName(ref), unauth.Err)}
	}
	return err
}

// pushError words a registry error of a push as dockerd shows it: the
// registry's error ("denied: requested access to the resource is
// denied", "unauthorized: authentication required") when there is one.
func pushError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		switch ec.Code {
		case errcode.ErrorCodeDenied:
			return classedError{errdefs.ErrPermissionDenied, errors.New(ec.Error())}
		case errcode.ErrorCodeUnauthorized:
			return classedError{errdefs.ErrUnauthenticated, errors.New(ec.Error())}
		}
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return classedError{errdefs.ErrUnauthenticated, fmt.Errorf("unauthorized: %v", unauth.Err)}
	}
	return err
}
