package daemon

import "github.com/wharfd/wharfd/pipeline"

// Module declares stage 3.10 containers-dir and the daemon stage.
var Module = pipeline.Module("daemon",
	pipeline.Stage{Step: "3.10", Name: "containers-dir", Doc: "<data-root>/containers, one directory per container", Ctor: NewContainersDir},
	pipeline.Stage{Name: "container-networks", Doc: "the daemon as the network router's Containers: connect and disconnect (network.go)", Ctor: NewNetworkAttacher},
	pipeline.Stage{Name: "daemon", Doc: "container store and lifecycle: create/start/stop, restart policies, restore on boot, stop on shutdown", Ctor: New},
)
