package volumes

import (
	"context"
	"path/filepath"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
)

// Params are the inputs of stage 3.15 volumes.
type Params struct {
	fx.In

	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	// DataRoot is the effective data root of stage 3.7
	// (<data-root>/<uid>.<gid> with --userns-remap).
	DataRoot host.DataRoot
	// Identity is the user namespace mapping of stage 3.5: volumes' data
	// directories belong to the containers' root.
	Identity host.Identity
	// Events is the event bus of stage 3.18; without it no volume event
	// is recorded.
	Events *events.Bus `optional:"true"`
}

// NewService is stage 3.15 volumes: New on <effective data root>/volumes,
// its volumes' data owned by the containers' root. The stop hook
// unmounts the volumes' devices still mounted.
func NewService(p Params) (*Service, error) {
	uid, gid := p.Identity.RootPair()
	o := Options{
		Root: filepath.Join(p.DataRoot.Path, "volumes"),
		UID:  uid, GID: gid,
		Logger: p.Logger.With(zap.String("module", "volumes")),
	}
	if p.Events != nil {
		o.Events = p.Events
	}
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error { return s.Close() }})
	return s, nil
}
