package registry

import "github.com/wharfd/wharfd/pipeline"

// Module declares the registry service stage.
var Module = pipeline.Module("registry",
	pipeline.Stage{Step: "2.3", Name: "registry-service", Doc: "registry config: mirrors, insecure registries (127.0.0.0/8 by default), auth; reloadable", Ctor: New},
)
