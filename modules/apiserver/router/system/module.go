package system

import "github.com/wharfd/wharfd/pipeline"

// Module declares the system router's stages.
var Module = pipeline.Module("system",
	pipeline.Stage{Step: "5", Name: "system", Doc: "routes /_ping, /version, /info, /events, /system/df", Ctor: New},
	pipeline.Stage{Step: "5", Name: "debug", Doc: "route /debug/startup: this boot's report as JSON or DOT", Ctor: NewDebug},
)
