package apiserver

import (
	"net/http"

	cerrdefs "github.com/containerd/errdefs"
)

// statusTable maps errdefs classes to HTTP status codes, first match wins,
// in the order dockerd's httpstatus.FromError checks them. Canceled,
// DeadlineExceeded, DataLoss and Internal are 500, as every error of no
// class is.
var statusTable = []struct {
	is     func(error) bool
	status int
}{
	{cerrdefs.IsNotFound, http.StatusNotFound},
	{cerrdefs.IsInvalidArgument, http.StatusBadRequest},
	{cerrdefs.IsConflict, http.StatusConflict},
	{cerrdefs.IsAlreadyExists, http.StatusConflict},
	{cerrdefs.IsFailedPrecondition, http.StatusBadRequest},
	{cerrdefs.IsOutOfRange, http.StatusBadRequest},
	{cerrdefs.IsAborted, http.StatusConflict},
	{cerrdefs.IsResourceExhausted, http.StatusTooManyRequests},
	{cerrdefs.IsUnauthorized, http.StatusUnauthorized},
	{cerrdefs.IsUnavailable, http.StatusServiceUnavailable},
	{cerrdefs.IsPermissionDenied, http.StatusForbidden},
	{cerrdefs.IsNotModified, http.StatusNotModified},
	{cerrdefs.IsNotImplemented, http.StatusNotImplemented},
}

// HTTPStatus returns the HTTP status an API error maps to, by its
// github.com/containerd/errdefs class, as dockerd's httpstatus.FromError:
// NotFound 404; InvalidArgument, FailedPrecondition and OutOfRange 400;
// Conflict, AlreadyExists and Aborted 409; ResourceExhausted 429;
// Unauthorized 401; Unavailable 503; PermissionDenied (dockerd's
// Forbidden) 403; NotModified 304; NotImplemented 501; anything else,
// Canceled and DeadlineExceeded included, 500. The outermost classified
// error of the chain decides, depth first through joined errors
// (errdefs.Resolve).
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusInternalServerError
	}
	rerr := cerrdefs.Resolve(err)
	for _, e := range statusTable {
		if e.is(rerr) {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// ErrorResponse is the body of every API error, {"message": "..."}, as
// the Engine API defines it.
type ErrorResponse struct {
	// Message is the error's text.
	Message string `json:"message"`
}

// WriteError writes err as an API error: the status HTTPStatus gives and
// {"message": err.Error()} as JSON.
func WriteError(w http.ResponseWriter, err error) {
	_ = WriteJSON(w, HTTPStatus(err), ErrorResponse{Message: err.Error()})
}

// errPageNotFound is what an unknown path or a known path with the wrong
// method answers: 404 {"message":"page not found"}, as dockerd.
var errPageNotFound = cerrdefs.ErrNotFound.WithMessage("page not found")

// invalidParam classifies err as InvalidArgument (400) keeping its text.
func invalidParam(err error) error {
	if err == nil || cerrdefs.IsInvalidArgument(err) {
		return err
	}
	return invalidError{err}
}

// invalidError is an InvalidArgument error whose text is its cause's.
type invalidError struct{ err error }

func (e invalidError) Error() string { return e.err.Error() }
func (e invalidError) Unwrap() error { return e.err }

// InvalidParameter marks the error as InvalidArgument for errdefs.
func (invalidError) InvalidParameter() {}
