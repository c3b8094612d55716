package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		name string
		give error
		want int
	}{
		{name: "not found", give: cerrdefs.ErrNotFound, want: http.StatusNotFound},
		{name: "wrapped not found", give: fmt.Errorf("open store %q: %w", "x", cerrdefs.ErrNotFound), want: http.StatusNotFound},
		{name: "invalid argument", give: cerrdefs.ErrInvalidArgument.WithMessage("bad"), want: http.StatusBadRequest},
		{name: "conflict", give: cerrdefs.ErrConflict, want: http.StatusConflict},
		{name: "already exists", give: cerrdefs.ErrAlreadyExists, want: http.StatusConflict},
		{name: "failed precondition", give: cerrdefs.ErrFailedPrecondition, want: http.StatusBadRequest},
		{name: "out of range", give: cerrdefs.ErrOutOfRange, want: http.StatusBadRequest},
		{name: "aborted", give: cerrdefs.ErrAborted, want: http.StatusConflict},
		{name: "resource exhausted", give: cerrdefs.ErrResourceExhausted, want: http.StatusTooManyRequests},
		{name: "unauthorized", give: cerrdefs.ErrUnauthenticated, want: http.StatusUnauthorized},
		{name: "unavailable", give: cerrdefs.ErrUnavailable, want: http.StatusServiceUnavailable},
		{name: "permission denied", give: cerrdefs.ErrPermissionDenied, want: http.StatusForbidden},
		{name: "not modified", give: cerrdefs.ErrNotModified, want: http.StatusNotModified},
		{name: "not implemented", give: cerrdefs.ErrNotImplemented, want: http.StatusNotImplemented},
		{name: "internal", give: cerrdefs.ErrInternal, want: http.StatusInternalServerError},
		{name: "canceled", give: context.Canceled, want: http.StatusInternalServerError},
		{name: "deadline", give: context.DeadlineExceeded, want: http.StatusInternalServerError},
		{name: "plain", give: errors.New("boom"), want: http.StatusInternalServerError},
		{name: "nil", give: nil, want: http.StatusInternalServerError},
		{name: "joined takes the first class", give: errors.Join(errors.New("x"), cerrdefs.ErrConflict), want: http.StatusConflict},
		{name: "outermost class wins", give: fmt.Errorf("%w: %w", cerrdefs.ErrNotFound, cerrdefs.ErrConflict), want: http.StatusNotFound},
		{name: "version error", give: &VersionError{Version: "9.99", Max: "1.56"}, want: http.StatusBadRequest},
		{name: "panic", give: &PanicError{Value: "x"}, want: http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPStatus(tt.give); got != tt.want {
				t.Errorf("HTTPStatus(%v) = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}
