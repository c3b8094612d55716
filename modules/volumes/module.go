package volumes

import "github.com/wharfd/wharfd/pipeline"

// Module declares the volume stage.
var Module = pipeline.Module("volumes",
	pipeline.Stage{Step: "3.15", Name: "volumes", Doc: "volume service with the local driver: <root>/volumes/<name>/_data, options type/device/o", Ctor: NewService},
)
