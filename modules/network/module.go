package network

import "github.com/wharfd/wharfd/pipeline"

// Module declares the network stages.
var Module = pipeline.Module("network",
	pipeline.Stage{Step: "3.1", Name: "mtu", Doc: "default MTU (1500 unless --mtu sets it)", Ctor: NewMTU},
	pipeline.Stage{Step: "3.3", Name: "bridge-mode", Doc: "whether the default bridge is disabled (--bridge=none), and its name", Ctor: NewBridgeMode},
	pipeline.Stage{Step: "3.21", Name: "advertise", Doc: "the node address: the default-route interface's", Ctor: NewAdvertise},
	pipeline.Stage{Step: "3.22", Name: "netcontroller", Doc: "networks (bridge, host, none, user bridges), IPAM, nftables table wharfd, ports", Ctor: NewNetController},
)
