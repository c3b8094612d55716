package container

import "github.com/wharfd/wharfd/pipeline"

// Module declares the container router's stage.
var Module = pipeline.Module("container",
	pipeline.Stage{Step: "5", Name: "container", Doc: "routes /containers and /exec (create, start, stop, attach, logs, exec, archive, …); containers' /info and /system/df share", Ctor: New},
)
