package main

import (
	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/apiserver/router/auth"
	ctrrouter "github.com/wharfd/wharfd/modules/apiserver/router/container"
	imagerouter "github.com/wharfd/wharfd/modules/apiserver/router/image"
	netrouter "github.com/wharfd/wharfd/modules/apiserver/router/network"
	"github.com/wharfd/wharfd/modules/apiserver/router/system"
	"github.com/wharfd/wharfd/modules/apiserver/router/volume"
	"github.com/wharfd/wharfd/modules/config"
	ctrdaemon "github.com/wharfd/wharfd/modules/daemon"
	"github.com/wharfd/wharfd/modules/distribution"
	"github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/modules/network"
	"github.com/wharfd/wharfd/modules/registry"
	"github.com/wharfd/wharfd/modules/runtime"
	"github.com/wharfd/wharfd/modules/storage"
	"github.com/wharfd/wharfd/modules/volumes"
	"github.com/wharfd/wharfd/pipeline"
	"go.uber.org/zap"
)

// modules lists every module of the daemon, the flags stage first. The
// order is only the order of declaration (and of the graph's drawing):
// fx orders the stages by what they need.
func modules(flags *config.Flags) []pipeline.Mod {
	return []pipeline.Mod{
		pipeline.Module("cmd", pipeline.Stage{
			Step: "1.1", Name: "flags",
			Doc:  "the parsed command line",
			Ctor: func() *config.Flags { return flags },
		}),
		config.Module,
		// Every stage that touches the host needs the pidfile's value, so
		// it runs after 3.4 root-check and the pidfile whatever this order
		// (TestStagesThatTouchTheHostFollowThePidfile).
		host.Module,
		network.Module,
		runtime.Module,
		events.Module,
		volumes.Module,
		storage.Module,
		ctrdaemon.Module,
		apiserver.Module,
		system.Module,
		netrouter.Module,
		volume.Module,
		imagerouter.Module,
		registry.Module,
		distribution.Module,
		imagerouter.DistributionModule,
		auth.Module,
		ctrrouter.Module,
	}
}

// externals are the values cmd supplies to fx from outside the stages.
func externals() []any {
	return []any{(*zap.Logger)(nil), zap.AtomicLevel{}, (*pipeline.Recorder)(nil), (*pipeline.Graph)(nil)}
}

// bootGraph computes the daemon's boot graph without running it.
func bootGraph(flags *config.Flags) (*pipeline.Graph, error) {
	return pipeline.NewGraph(modules(flags), externals()...)
}
