package volume

import "github.com/wharfd/wharfd/pipeline"

// Module declares the volume router's stage.
var Module = pipeline.Module("volume",
	pipeline.Stage{Step: "5", Name: "volume", Doc: "routes /volumes (list, inspect, create, remove, prune); volumes' /system/df share", Ctor: New},
)
