package network

import "github.com/wharfd/wharfd/pipeline"

// Module declares the network router's stage.
var Module = pipeline.Module("network-router",
	pipeline.Stage{Step: "5", Name: "network", Doc: "routes /networks: list, inspect, create, connect, disconnect, remove, prune", Ctor: New},
)
