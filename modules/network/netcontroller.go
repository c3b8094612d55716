package network

import (
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	evbus "github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
)

// NetControllerParams are the inputs of stage 3.22 netcontroller.
type NetControllerParams struct {
	fx.In

	Config    *config.Config
	Verified  config.Verified
	MTU       MTU
	Mode      BridgeMode
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	// DataRoot is the effective data root (3.7); without it the
	// configured --data-root is used.
	DataRoot host.DataRoot `optional:"true"`
	// Events is the event bus (3.18); network events go to it when it
	// is wired.
	Events *evbus.Bus `optional:"true"`
}

// NewNetController is stage 3.22 netcontroller: New with the daemon's
// configuration, state under <data root>/network. Its stop hook closes
// the controller (sockets, handles); links and rules stay for the next
// start, as dockerd leaves them.
func NewNetController(p NetControllerParams) (*Controller, error) {
	root := p.DataRoot.Path
	if root == "" {
		root = p.Config.DataRoot
	}
	opts := OptionsFromConfig(p.Config, root, p.MTU, p.Mode)
	if p.Events != nil {
		opts.Events = p.Events
	}
	opts.Logger = p.Logger
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return c.Close() }})
	return c, nil
}
