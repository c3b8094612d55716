package runtime

import "github.com/wharfd/wharfd/pipeline"

// Module declares stage 2.4 runtime.
var Module = pipeline.Module("runtime",
	pipeline.Stage{Step: "2.4", Name: "runtime", Doc: "libcontainer runtime: state under <exec-root>/runtime, cgroup driver and parent", Ctor: New},
)
