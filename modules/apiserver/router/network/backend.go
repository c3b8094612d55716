package network

import (
	"context"

	nettypes "github.com/moby/moby/api/types/network"

	wnet "github.com/wharfd/wharfd/modules/network"
)

// Backend is what the router needs of the network controller
// (*network.Controller implements it).
type Backend interface {
	// List returns every network.
	List(ctx context.Context) []nettypes.Inspect
	// Get returns a network by ID, name or ID prefix (404 when none).
	Get(ctx context.Context, ref string) (nettypes.Inspect, error)
	// Create makes a network.
	Create(ctx context.Context, req nettypes.CreateRequest) (nettypes.CreateResponse, error)
	// Remove deletes a network.
	Remove(ctx context.Context, ref string) error
	// Prune removes unused user networks that keep accepts, returning
	// their names.
	Prune(ctx context.Context, keep func(nettypes.Inspect) bool) ([]string, error)
}

var _ Backend = (*wnet.Controller)(nil)

// Containers connects containers to networks; the containers module
// provides it, as exactly this interface type. Both methods resolve the
// container by ID, name or ID prefix and fail with NotFound "No such
// container: x" as dockerd, and the network with the controller's
// NotFound.
type Containers interface {
	// ConnectContainerToNetwork attaches the container (running or not)
	// to the network with the endpoint settings (aliases, --ip); nil
	// settings are the defaults.
	ConnectContainerToNetwork(ctx context.Context, container, network string, settings *nettypes.EndpointSettings) error
	// DisconnectContainerFromNetwork detaches it; force detaches even
	// when the container is gone.
	DisconnectContainerFromNetwork(ctx context.Context, container, network string, force bool) error
}
